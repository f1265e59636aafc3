"""analyzer.decode: every format a user has, slices, resampling, bounded memory, clear errors."""
import shutil
import subprocess
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from analyzer.decode import DecodeError, check_audio, load, probe

SR = 44100
FORMATS = ["wav", "flac", "ogg", "mp3", "m4a", "aac", "opus"]


def _steps(sr=SR, freqs=(300.0, 600.0, 900.0), seconds=1.0):
    """Left channel: one tone per second (300, 600, 900 Hz); right channel silent."""
    t = np.arange(int(sr * seconds)) / sr
    left = np.concatenate([0.5 * np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32)
    return np.stack([left, np.zeros_like(left)], axis=1)


def _encode(wav, out, *extra):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), *extra, str(out)],
                   check=True)
    return out


def _dominant_hz(y, sr):
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.argmax(spectrum) * sr / len(y)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats")
    wav = folder / "steps.wav"
    sf.write(wav, _steps(), SR, subtype="FLOAT")
    made = {"wav": wav}
    for ext in FORMATS[1:]:
        made[ext] = _encode(wav, folder / f"steps.{ext}",
                            "-metadata", "title=Step Song", "-metadata", "artist=Tone Band")
    return made


@pytest.mark.parametrize("ext", FORMATS)
def test_every_format_decodes_to_the_same_tones(files, ext):
    y, sr = load(files[ext])
    assert y.dtype == np.float32 and y.ndim == 1
    # Lossy codecs pad a little (raw ADTS AAC keeps 2 frames of 1024 priming/padding); opus
    # always decodes at 48 kHz.
    assert abs(len(y) / sr - 3.0) < 0.05
    for second, expected in enumerate((300, 600, 900)):
        # mono is the mean of a tone and silence: amplitude halves, frequency stays
        window = y[int((second + 0.25) * sr):int((second + 0.75) * sr)]
        assert abs(_dominant_hz(window, sr) - expected) < 5
        assert 0.15 < np.max(np.abs(window)) < 0.35


@pytest.mark.parametrize("ext", ["flac", "mp3", "opus"])
def test_slice_resample_and_channels(files, ext):
    y, sr = load(files[ext], sr=22050, mono=False, offset_s=1.0, duration_s=1.0)
    assert sr == 22050 and y.shape[0] == 2
    assert abs(y.shape[1] - 22050) <= 32
    assert abs(_dominant_hz(y[0, 2000:-2000], sr) - 600) < 5
    assert np.max(np.abs(y[1])) < 0.02 * np.max(np.abs(y[0]))  # right stays (nearly) silent


def test_probe_reads_rate_channels_duration_and_tags(files):
    for ext in ("flac", "mp3", "ogg", "m4a"):
        info = probe(files[ext])
        assert info.sr == SR and info.channels == 2
        assert abs(info.duration_s - 3.0) < 0.1
        assert info.tags.get("title") == "Step Song" and info.tags.get("artist") == "Tone Band"


def test_extension_that_lies_still_decodes(files, tmp_path):
    fake = tmp_path / "really-a-wav.mp3"
    fake.write_bytes(files["wav"].read_bytes())
    opus_in_ogg = _encode(files["wav"], tmp_path / "opus.ogg", "-c:a", "libopus")
    for path in (fake, opus_in_ogg):
        y, sr = load(path)
        assert abs(len(y) / sr - 3.0) < 0.03


@pytest.mark.parametrize("ext", ["wav", "mp3"])
def test_memory_stays_near_the_output_size(tmp_path, ext):
    seconds = 60
    wav = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    sf.write(wav, (0.1 * rng.standard_normal((seconds * SR, 2))).astype(np.float32), SR,
             subtype="PCM_16")
    path = wav if ext == "wav" else _encode(wav, tmp_path / "long.mp3")
    tracemalloc.start()
    try:
        y, _ = load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out_bytes = y.nbytes
    # a whole-file read of the stereo float32 would peak at >= 3x the mono output
    assert peak < 1.6 * out_bytes, (peak, out_bytes)


def test_length_limit_is_a_clear_error_but_slices_pass(files):
    for ext in ("wav", "mp3"):
        with pytest.raises(DecodeError, match="limit"):
            load(files[ext], max_duration_s=1.0)
        y, sr = load(files[ext], max_duration_s=1.0, duration_s=0.5)
        assert abs(len(y) - sr // 2) <= 1


@pytest.mark.parametrize("name,content,reason", [
    ("missing.wav", None, "no such file"),
    ("empty.mp3", b"", "empty"),
    ("notes.wav", b"these are words, not sound\n" * 20, "not an audio file"),
    ("notes.mp3", b"these are words, not sound\n" * 20, "not an audio file"),
    ("image.flac", bytes(range(256)) * 64, "not an audio file"),
])
def test_bad_input_names_the_file_and_the_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DecodeError, match=reason) as error:
        load(path)
    assert name in str(error.value) and isinstance(error.value, ValueError)


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(DecodeError, match="folder"):
        load(tmp_path)


def test_missing_ffmpeg_says_so(files, monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert shutil.which("ffmpeg") is None
    with pytest.raises(DecodeError, match="ffmpeg"):
        load(files["mp3"])
    assert load(files["flac"])[0].size  # libsndfile formats need no ffmpeg


def test_check_audio_rejects_short_and_silent():
    sr = 8000
    with pytest.raises(DecodeError, match="too short"):
        check_audio(np.ones(sr * 5, np.float32), sr, path="clip.wav")
    check_audio(np.ones(sr * 5, np.float32), sr, path="clip.wav", min_duration_s=2)
    with pytest.raises(DecodeError, match="silent") as error:
        check_audio(np.full(sr * 12, 1e-5, np.float32), sr, path="quiet.flac")
    assert "quiet.flac" in str(error.value)
    check_audio(np.full(sr * 12, 0.01, np.float32), sr, path="fine.flac")


@pytest.mark.parametrize("ext", ["wav", "mka"])
def test_nan_and_inf_samples_come_back_as_silence(tmp_path, ext):
    # A float file from a broken render: a few NaN and inf samples. Kept, the resampler spread
    # them over the song and the analyzer called a loud file "silent".
    y = _steps()
    y[1000:1100, 0], y[5000, 0], y[6000, 1] = np.nan, np.inf, -np.inf
    wav = tmp_path / "broken.wav"
    sf.write(wav, y, SR, subtype="FLOAT")
    path = wav if ext == "wav" else _encode(wav, tmp_path / "broken.mka", "-c:a", "pcm_f32le")
    for rate in (None, 22050):                      # as is, and through the resampler
        got, sr = load(path, sr=rate, mono=False)
        assert np.isfinite(got).all() and sr == (rate or SR)
    got, _ = load(path)
    assert not got[1000:1100].any() and abs(got[20000:21000]).max() > 0.2
    check_audio(np.tile(got, 4), SR, path=path.name)        # loud, not "silent"

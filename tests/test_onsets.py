"""analyzer.onsets on synthetic recordings with exact answers: onsets, the noise gate's
measures, the mel filters, and what charting imports."""
import mir_eval
import numpy as np
import pytest

from analyzer.beats import pulse_clarity
from analyzer.onsets import (ANALYSIS_SR, FRAME_RATE, N_FFT, NotesError, analysis_spectrogram,
                             crest_factor_db, detect_onsets, envelope_contrast, mel_filterbank,
                             onset_strength, spectral_change, strongest_apart)
from tests.plucked import brickwall, pluck, riff


def _f(reference, estimate, window=0.05):
    return mir_eval.onset.f_measure(np.asarray(reference), np.asarray(estimate), window=window)[0]


@pytest.mark.parametrize("bpm", [100, 128, 175])
def test_onsets_of_a_riff_are_found_on_time(bpm):
    r = riff(bpm=bpm, seed=bpm)
    env = onset_strength(analysis_spectrogram(r.y, r.sr))
    found = detect_onsets(env)
    assert _f(r.times, found.times) >= 0.9
    matched = mir_eval.util.match_events(r.times, found.times, 0.05)
    errors = np.array([found.times[j] - r.times[i] for i, j in matched])
    assert abs(np.median(errors)) < 0.012  # no bias beyond a frame
    assert np.all(found.strength > 0)


def test_onsets_do_not_depend_on_the_sample_rate():
    low = riff(sr=22050, seed=3)
    high = riff(sr=44100, seed=3)
    def onsets(y, sr):
        return detect_onsets(onset_strength(analysis_spectrogram(y, sr))).times

    t_low, t_high = onsets(low.y, 22050), onsets(high.y, 44100)
    assert _f(t_low, t_high, window=0.015) >= 0.97


def test_silence_and_steady_tone_have_no_onsets_past_the_first():
    sr = 22050
    silence = np.zeros(5 * sr, np.float32)
    env = onset_strength(analysis_spectrogram(silence, sr))
    assert len(detect_onsets(env)) == 0
    t = np.arange(5 * sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    tone[:sr] = 0.0   # one onset at 1 s, then 4 s of an unchanging tone
    found = detect_onsets(onset_strength(analysis_spectrogram(tone, sr)))
    assert len(found) == 1 and abs(found.times[0] - 1.0) < 0.03


def _noise(kind: str, seconds: float, sr: int, seed: int) -> np.ndarray:
    """Stationary noise: white, pink (1/f power) or brown (1/f^2)."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(int(seconds * sr)))
    f = np.maximum(np.arange(spectrum.size), 1.0)
    power = {"white": 0.0, "pink": 0.5, "brown": 1.0}[kind]
    y = np.fft.irfft(spectrum / f ** power, int(seconds * sr))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
def test_noise_has_no_pulse_and_no_contrast_but_music_has(kind):
    sr = ANALYSIS_SR
    noise = onset_strength(analysis_spectrogram(_noise(kind, 12, sr, seed=3), sr))
    assert pulse_clarity(noise) < 0.15 and envelope_contrast(noise) < 2.3
    r = riff(bpm=140, bars=8, seed=4)
    music = onset_strength(analysis_spectrogram(r.y, r.sr))
    assert pulse_clarity(music) > 0.4 and envelope_contrast(music) > 3.0
    # Under white noise as loud as itself the riff's beat is still there.
    loud = r.y + _noise("white", r.y.size / r.sr, r.sr, seed=5) * np.sqrt(
        np.mean(r.y ** 2) / np.mean(_noise("white", r.y.size / r.sr, r.sr, seed=5) ** 2))
    assert pulse_clarity(onset_strength(analysis_spectrogram(loud, r.sr))) > 0.2


def test_only_a_changing_sound_has_spectral_change():
    sr = ANALYSIS_SR
    t = np.arange(12 * sr) / sr
    swelling = _noise("white", 12, sr, seed=6) * (1.0 + 0.8 * np.sin(2 * np.pi * 0.3 * t))
    for still in [_noise(kind, 12, sr, seed=3) for kind in ("white", "pink", "brown")] + [
            swelling.astype(np.float32)]:
        assert spectral_change(analysis_spectrogram(still, sr)) < 0.7
    r = riff(bpm=140, bars=8, seed=4)
    assert spectral_change(analysis_spectrogram(r.y, r.sr)) > 2.0


def test_a_steady_tone_has_no_onsets():
    # Its flux is rounding noise, under MIN_FLUX_SCALE: the envelope stays under 1 (no peak
    # reaches a loud onset's strength) instead of being scaled up to it. Only the first frames,
    # where the recording starts mid-cycle, rise above a tenth.
    sr = ANALYSIS_SR
    t = np.arange(10 * sr) / sr
    env = onset_strength(analysis_spectrogram(np.sin(2 * np.pi * 440 * t).astype(np.float32), sr))
    assert env.max() < 1.0
    assert env[int(0.1 * FRAME_RATE):].max() < 0.1


def test_per_band_the_attack_of_a_quiet_band_counts_like_a_loud_ones():
    # A low note, then one three octaves up and 40 dB softer: relative to the loudest band its
    # attack hardly registers; relative to its own bands it counts about a third as much.
    sr = ANALYSIS_SR
    y = np.random.default_rng(0).standard_normal(4 * sr).astype(np.float32) * 1e-4
    low, high = pluck(45, 0.5, sr), pluck(93, 0.5, sr)
    y[sr:sr + low.size] += low
    y[2 * sr:2 * sr + high.size] += 0.01 * high

    def ratio(per_band):
        env = onset_strength(analysis_spectrogram(y, sr), per_band=per_band)
        around = [env[int((t - 0.05) * FRAME_RATE):int((t + 0.05) * FRAME_RATE)] for t in (1, 2)]
        return around[1].max() / around[0].max()

    assert ratio(False) < 0.1
    assert ratio(True) > 0.25


def test_crest_factor_tells_a_brickwalled_master_from_the_mix():
    # Plucked notes stand 13-14 dB over their RMS; through a brickwall limiter pushing them up
    # by 8-12 dB, 8-10 dB (the 8 real mixes: 11.2-12.9 dB as mixed, 7.9-9.6 dB limited).
    song = riff(bpm=140, seed=2)
    assert crest_factor_db(song.y) > 13
    for gain_db in (8, 12):
        assert 7.5 < crest_factor_db(brickwall(song.y, song.sr, gain_db=gain_db)) < 10
    assert crest_factor_db(np.zeros(100)) == np.inf


def test_strongest_apart_keeps_the_strongest_events_apart():
    times = np.array([0.0, 0.05, 0.1, 0.3, 0.32])
    keep = strongest_apart(times, np.array([0.5, 1.0, 0.4, 0.2, 0.9]), min_gap_s=0.1)
    np.testing.assert_array_equal(keep, [1, 4])
    assert np.all(np.diff(times[keep]) >= 0.1)


def test_invalid_input_is_rejected():
    with pytest.raises(NotesError):
        analysis_spectrogram(np.zeros((2, 3, 4)), 22050)
    with pytest.raises(NotesError):
        analysis_spectrogram(np.zeros(0), 22050)
    with pytest.raises(NotesError):
        analysis_spectrogram(np.zeros(100), 1000)
    with pytest.raises(NotesError):
        detect_onsets(np.zeros((3, 3)))


def test_stereo_is_averaged():
    r = riff(seed=2)
    stereo = np.stack([r.y, r.y])
    a = analysis_spectrogram(r.y, r.sr).magnitude
    b = analysis_spectrogram(stereo, r.sr).magnitude
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("n_mels", [40, 128])
def test_mel_filterbank_is_librosas(n_mels):
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=ANALYSIS_SR, n_fft=N_FFT, n_mels=n_mels)
    assert np.allclose(mel_filterbank(n_mels), expected, rtol=1e-5, atol=1e-9)


def test_charting_imports_no_heavy_modules():
    # scipy.signal, librosa and numba cost ~1.5-2 s CPU per process: more than charting a song.
    import subprocess
    import sys
    code = ("import sys, numpy as np; from analyzer.charting import chart_notes; "
            "from tests.plucked import riff; r = riff(sr=44100, seed=1); chart_notes(r.y, r.sr); "
            "print(sorted(m for m in ('scipy.signal', 'librosa', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

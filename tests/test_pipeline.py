"""analyzer.pipeline: a synthetic song with known notes through every stage, and the input checks."""
import subprocess

import numpy as np
import pytest
import soundfile as sf

from analyzer.decode import DecodeError
from analyzer.pipeline import ANALYSIS_SR, STAGES, analyze_file
from chart_store.chart import Source

SR = 44100
ONSETS = np.arange(1.0, 13.0, 0.5)  # a note every half beat at 120 BPM


def _plucks(seconds=14.0, sr=SR):
    """Decaying harmonic tones (a rising and falling melody) starting at ONSETS."""
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    melody = [57, 60, 62, 64, 67, 64, 62, 60]
    for i, onset in enumerate(ONSETS):
        f0 = 440.0 * 2 ** ((melody[i % len(melody)] - 69) / 12)
        span = (t >= onset) & (t < onset + 0.45)
        tau = t[span] - onset
        tone = sum(np.sin(2 * np.pi * k * f0 * tau) / k for k in (1, 2, 3))
        y[span] += 0.3 * tone * np.exp(-tau * 8)
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    folder = tmp_path_factory.mktemp("song")
    wav = folder / "plucks.wav"
    y = _plucks()
    sf.write(wav, np.stack([y, y], axis=1), SR)
    tagged = folder / "tagged.flac"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-metadata",
                    "title=Pluck Song", "-metadata", "artist=The Testers", "-metadata",
                    "album=Synthetic", str(tagged)], check=True)
    return {"wav": wav, "flac": tagged, "y": y}


def test_a_song_goes_through_every_stage(song):
    from chart_store.chartfile import dumps, loads
    from chart_store.fingerprint import fingerprint

    stages = []
    chart = analyze_file(song["flac"], progress=stages.append)
    assert stages == list(STAGES)
    meta = chart.meta
    assert (meta.title, meta.artist, meta.album) == ("Pluck Song", "The Testers", "Synthetic")
    assert meta.source == Source.ANALYZED and "stems=hpss" in meta.tool_version
    assert abs(meta.duration_s - 14.0) < 0.01 and chart.lanes == 5
    # the fingerprint is of the whole recording and the sync envelope covers it at its frame rate
    assert len(chart.fingerprint.items) >= len(fingerprint(song["y"], SR).items) - 2
    assert abs(len(chart.sync.envelope) / chart.sync.frame_rate - 14.0) < 0.05
    # the notes follow the plucks
    expert = chart.track("expert")
    found = [np.min(np.abs(expert.times - onset)) < 0.05 for onset in ONSETS]
    assert np.mean(found) >= 0.8, expert.times
    assert len(chart.beats) > 10
    assert any(note.mask is not None for note in expert)
    assert loads(dumps(chart)) == chart


def test_tags_missing_title_is_the_file_name_and_lanes_are_kept(song):
    chart = analyze_file(song["wav"], stems="none", lanes=4)
    assert chart.meta.title == "plucks" and chart.meta.artist == ""
    assert chart.lanes == 4 and "stems=none" in chart.meta.tool_version
    assert all(0 <= n.lane < 4 for track in chart.difficulties.values() for n in track)


def test_short_silent_and_noise_files_are_refused(tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, _plucks(seconds=5.0), SR)
    with pytest.raises(DecodeError, match="short.wav: too short"):
        analyze_file(short)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(12 * SR, np.float32), SR)
    with pytest.raises(DecodeError, match="silent.wav: silent"):
        analyze_file(silent)
    noise = tmp_path / "noise.wav"
    sf.write(noise, np.random.default_rng(0).normal(0, 0.1, 12 * SR).astype(np.float32), SR)
    with pytest.raises(DecodeError, match="noise.wav: no notes found"):
        analyze_file(noise, stems="none")
    # the minimum is a parameter: a 5-second clip can be charted when asked for
    assert analyze_file(short, min_duration_s=3.0, stems="none").meta.duration_s == 5.0


def test_analysis_rate_is_basic_pitchs():
    assert ANALYSIS_SR == 22050

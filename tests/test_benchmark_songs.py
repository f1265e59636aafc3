"""benchmarks.data and the import benchmark read any Frets on Fire / Clone Hero / YARG songs
folder, as the importer does: song folders at any depth, notes.mid or notes.chart, stems of any
audio suffix in any case. An independent re-measurement on unseen songs depends on it."""
import importlib

import numpy as np
import pytest
import soundfile as sf

from analyzer.formats import read_song_folder
from benchmarks.data import song_folders, song_parts
from tests.test_formats_chart_text import CHART

import_benchmark = importlib.import_module("benchmarks.import.songs")   # "import" is a keyword

SR = 22050


def _tone(hz, seconds=2.0, channels=2):
    t = np.arange(int(seconds * SR)) / SR
    y = (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.stack([y] * channels, axis=1)


@pytest.fixture
def songs(tmp_path):
    """A Clone Hero-like tree: Artist/Song with a notes.chart, a FLAC backing and a "Guitar.WAV"
    stem; and a Frets on Fire folder whose only audio is song.ogg (the guitar inside)."""
    song = tmp_path / "Someone" / "Test (charter)"
    song.mkdir(parents=True)
    (song / "notes.chart").write_text(CHART)
    sf.write(song / "song.flac", _tone(220), SR)
    sf.write(song / "Guitar.WAV", _tone(440, 1.5), SR)
    mixed = tmp_path / "mixed_only"
    mixed.mkdir()
    (mixed / "notes.chart").write_text(CHART)
    sf.write(mixed / "song.ogg", _tone(330, channels=1), SR)
    return tmp_path, song, mixed


def test_song_folders_are_found_at_any_depth(songs):
    root, song, mixed = songs
    assert song_folders(root) == sorted([song, mixed])
    (root / "empty").mkdir()
    with pytest.raises(SystemExit, match="no song folder"):
        song_folders(root / "empty")


def test_song_parts_keep_the_charted_instruments_stem_apart(songs):
    _, song, mixed = songs
    parts = song_parts(song)
    assert parts.stem == "guitar" and parts.has_stem and parts.sr == SR
    assert parts.instrument.shape == parts.rest.shape == (2 * SR,)    # padded to the longest
    np.testing.assert_allclose(parts.instrument[:SR], _tone(440)[:SR, 0], atol=1e-4)
    assert not parts.instrument[int(1.5 * SR):].any()
    np.testing.assert_allclose(parts.mix, parts.instrument + parts.rest)
    stereo = song_parts(song, mono=False, sr=44100)
    assert stereo.mix.shape == (2, 4 * SR) and stereo.sr == 44100
    only = song_parts(mixed)
    assert not only.has_stem and not only.instrument.any() and only.rest.any()


def test_the_import_benchmark_reads_a_chart_file_on_its_own(songs):
    # Its reference: [ExpertSingle] frets 0-4 and the open note on lane 0 (the modifier, star
    # power and events left out), ticks to seconds through the tempo change, plus the Offset;
    # the same notes and sustains the importer reads (tests.test_formats_chart_text: why).
    _, song, _ = songs
    reference, cutoff = import_benchmark.reference_expert(song, None)
    assert cutoff == 0
    assert [(t, lane, dur) for t, lane, _, dur in reference] == [
        (0.5, 0, 0.0), (0.5, 4, 0.0), (1.0, 2, 0.25), (1.5, 0, 0.0), (1.5, 1, 1.0)]
    imported = read_song_folder(song).notes.difficulties["expert"]
    assert [(n.t, n.lane, n.dur) for n in imported] == [
        (t, lane, dur) for t, lane, _, dur in reference]

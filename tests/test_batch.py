"""analyzer.batch: folder scanning, content-hash skipping, failures that do not stop a batch,
worker processes and chart files written beside the store."""
import hashlib

import numpy as np
import pytest
import soundfile as sf

from analyzer.batch import find_audio, out_names, run_batch, source_hash
from analyzer.pipeline import STAGES
from chart_store.chartfile import read_chart
from chart_store.local import LocalStore
from tests.fixtures.songs import synth_song

SR = 22050


def _write_song(path, seed, seconds=12.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, synth_song(seed, duration_s=seconds, sr=SR), SR)
    return path


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "Music"
    songs = [_write_song(root / "a" / "one.wav", 1), _write_song(root / "b" / "c" / "two.flac", 2)]
    (root / "b" / "notes.txt").write_text("not audio, and not an audio extension")
    (root / "broken.mp3").write_bytes(b"ID3 but nothing else" * 10)
    _write_song(root / ".hidden" / "skip.wav", 3)
    return root, songs


def test_find_audio_walks_folders_in_a_stable_order(library, tmp_path):
    root, songs = library
    found = find_audio([root])
    assert found.audio == [root / "broken.mp3", songs[0], songs[1]]  # files, then sub-folders
    assert found.song_folders == []
    # a file named directly is taken whatever its extension; duplicates collapse
    odd = tmp_path / "song.audio"
    odd.write_bytes(songs[0].read_bytes())
    assert find_audio([odd, root / "a", songs[0]]).audio == [odd, songs[0]]
    # a path that is not there (a typo, a dangling link) is listed; the rest is still found
    (tmp_path / "gone.ogg").symlink_to(tmp_path / "nowhere.ogg")
    found = find_audio([tmp_path / "nowhere", tmp_path / "gone.ogg", odd])
    assert found.missing == [tmp_path / "nowhere", tmp_path / "gone.ogg"]
    assert found.audio == [odd]


def test_a_song_folders_stems_are_not_songs(library):
    # A Clone Hero song folder: its files are one song's stems and its chart a human one
    # (loopjam import). Analyzed one by one, each stem became a "song" of its own.
    root, songs = library
    song = root / "clonehero" / "Artist - Title"
    _write_song(song / "guitar.ogg", 4)
    _write_song(song / "song.ogg", 5)
    (song / "NOTES.CHART").write_text("[Song]\n{\n}\n")
    found = find_audio([root])
    assert found.audio == [root / "broken.mp3", songs[0], songs[1]]
    assert found.song_folders == [song]
    # named directly, a stem is taken as given
    assert find_audio([song / "guitar.ogg"]).audio == [song / "guitar.ogg"]
    # a notes.mid without a song.ini is no song folder (nothing to import): its audio is a song
    sketch = root / "sketch"
    (sketch / "notes.mid").parent.mkdir()
    (sketch / "notes.mid").write_bytes(b"MThd")
    demo = _write_song(sketch / "demo.wav", 6)
    assert demo in find_audio([root]).audio


def test_source_hash_is_the_content(library, tmp_path):
    _, songs = library
    data = songs[0].read_bytes()
    assert source_hash(songs[0], block_bytes=1000) == "sha256:" + hashlib.sha256(data).hexdigest()
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(data)
    assert source_hash(copy) == source_hash(songs[0]) != source_hash(songs[1])


def test_out_names_never_collide(tmp_path):
    names = out_names([tmp_path / "a" / "Song.mp3", tmp_path / "b" / "song.flac",
                       tmp_path / "c" / "other.wav"], tmp_path / "out")
    assert [p.name for p in names.values()] == ["Song.chart", "song-2.chart", "other.chart"]


def test_batch_stores_reports_failures_and_skips_what_is_done(library, tmp_path):
    root, songs = library
    seen, stages = [], []
    results = run_batch([root], stems="none", on_result=seen.append,
                        on_stage=lambda path, stage: stages.append((path.name, stage)))
    assert seen == results and len(results) == 3
    for song in songs:
        assert [stage for name, stage in stages if name == song.name] == list(STAGES)
    by_input = {r.input: r for r in results}
    broken = by_input[str(root / "broken.mp3")]
    assert broken.error.startswith("broken.mp3: ") and broken.chart_id is None
    store = LocalStore()
    for song in songs:
        result = by_input[str(song)]
        assert result.error is None and not result.skipped
        assert store.chart_for_source(source_hash(song)) == result.chart_id
        assert read_chart(result.chart_path) == store.get(result.chart_id)
        assert result.notes["expert"] == len(store.get(result.chart_id).track("expert")) > 0
        assert abs(result.duration_s - 12.0) < 0.01
        assert set(result.to_json()) == {"input", "chart_id", "chart_path", "duration_s", "notes",
                                         "elapsed_s", "skipped"}
    # second run: nothing is analyzed again, even under another name
    renamed = tmp_path / "elsewhere" / "same-as-one.wav"
    renamed.parent.mkdir()
    renamed.write_bytes(songs[0].read_bytes())
    again = {r.input: r for r in run_batch([root, renamed], stems="none")}
    for song, first in ((songs[0], songs[0]), (songs[1], songs[1]), (renamed, songs[0])):
        assert again[str(song)].skipped and again[str(song)].chart_id == by_input[str(first)].chart_id
        assert again[str(song)].elapsed_s < 1.0
    assert again[str(root / "broken.mp3")].error == broken.error


def test_no_store_leaves_the_store_alone_and_out_writes_files(library, tmp_path, loopjam_home):
    root, songs = library
    out = tmp_path / "charts"
    results = run_batch(songs, stems="none", store=False, out_dir=out)
    assert not (loopjam_home / "store").exists()
    assert sorted(p.name for p in out.iterdir()) == ["one.chart", "two.chart"]
    for result in results:
        assert not result.skipped and read_chart(result.chart_path).id == result.chart_id


def test_worker_processes_give_the_same_charts(library):
    root, songs = library
    serial = {r.input: r.chart_id for r in run_batch(songs, stems="none", store=False)}
    parallel = run_batch([root], jobs=2, stems="none")
    assert len(parallel) == 3
    for result in parallel:
        if result.input in serial:
            assert result.chart_id == serial[result.input]
        else:
            assert result.error.startswith("broken.mp3")
    assert len(LocalStore().list()) == 2  # the workers stored their charts


def test_demucs_stems_are_kept_locally_at_the_files_quality(tiny_demucs_weights, tmp_path,
                                                            monkeypatch):
    from analyzer import charting
    from analyzer.batch import analyze_one
    from chart_store.stems import StemStore
    from companion.removal import local_stems

    sr = 44100
    mono = synth_song(4, duration_s=10.5, sr=sr)
    song = tmp_path / "song.flac"
    sf.write(song, np.stack([mono, 0.5 * mono], axis=1), sr)
    # A random model's "other" is nearly silent: chart it anyway (the rule that would chart the
    # mix instead is tested in tests/test_charting.py).
    monkeypatch.setattr(charting, "MIN_STEM_SHARE", 0.0)
    result = analyze_one(song, stems="demucs")
    chart = LocalStore().get(result.chart_id)
    assert "stems=demucs" in chart.meta.tool_version
    notes = chart.track("expert").notes
    assert {n.stem for n in notes} == {"other"}
    # the separated stem the notes come from, at the file's rate and channels, chart time 0 at
    # sample 0 -- what the live remover loads to cancel missed notes
    assert StemStore().names(result.chart_id) == ("other",)
    stems = local_stems(chart, notes)
    y, stem_sr = stems["other"]
    assert stem_sr == sr and y.shape[0] == 2 and abs(y.shape[1] - mono.size) < sr // 100
    assert np.abs(y).max() > 0

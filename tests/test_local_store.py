"""The local store: round trips, identification, several writer processes, kill -9 mid-write."""
from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from chart_store.chart import Chart, ChartMeta, Fingerprint, Note, Source
from chart_store.chartfile import dumps, read_chart
from chart_store.fingerprint import fingerprint
from chart_store.local import ChartNotFound, LocalStore
from tests.fixtures.songs import song_chart, synth_song

SR = 22050


@pytest.fixture(scope="module")
def charts():
    return [song_chart(seed) for seed in range(4)]


def test_put_get_list_remove(tmp_path, charts):
    store = LocalStore(tmp_path / "store")
    ids = [store.put(c) for c in charts]
    assert ids == [c.id for c in charts]
    assert store.put(charts[0]) == ids[0]  # idempotent
    assert store.get(ids[1]) == charts[1]
    assert [i.chart_id for i in store.list()] == sorted(ids, key=lambda i: store.info(i).title)
    assert [i.title for i in store.list("song 2")] == ["Song 2"]
    assert store.list("%") == [] and store.list("_") == []  # LIKE wildcards are literal
    store.remove(ids[0])
    assert ids[0] not in store and not store.path(ids[0]).exists()
    with pytest.raises(ChartNotFound):
        store.get(ids[0])
    with pytest.raises(ChartNotFound):
        store.remove(ids[0])
    with pytest.raises(ChartNotFound):
        store.get("../../etc/passwd")
    stats = store.stats()
    assert stats.charts == 3 and stats.by_source == {"analyzed": 3}
    assert stats.fingerprint_items == sum(len(c.fingerprint.items) for c in charts[1:])


def test_resolve_takes_a_whole_id_or_a_unique_prefix(tmp_path):
    store = LocalStore(tmp_path / "store")
    ids = [store.put(Chart(ChartMeta(f"song {k}"), {"expert": [Note(1.0)]})) for k in range(40)]
    first = ids[0]
    assert store.resolve(first) == first and store.resolve(first[:12].upper()) == first
    shared = next(a[0] for a in ids if sum(b[0] == a[0] for b in ids) > 1)  # 40 ids, 16 digits
    with pytest.raises(ChartNotFound, match="charts: give more of the id"):
        store.resolve(shared)
    with pytest.raises(ChartNotFound, match="no chart"):
        store.resolve("not-an-id")


def test_default_root_is_in_loopjam_home(loopjam_home, charts):
    store = LocalStore()
    store.put(charts[0])
    assert (loopjam_home / "store" / "store.sqlite3").is_file()


def test_migrations_are_recorded(tmp_path):
    LocalStore(tmp_path)
    LocalStore(tmp_path)  # reopening applies nothing twice
    with sqlite3.connect(tmp_path / "store.sqlite3") as conn:
        rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
        assert rows == [(1,), (2,)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_source_hash_map(tmp_path, charts):
    store = LocalStore(tmp_path)
    assert store.chart_for_source("sha256:abc") is None
    chart_id = store.put(charts[0], source_hash="sha256:abc")
    assert store.chart_for_source("sha256:abc") == chart_id
    store.remove(chart_id)
    assert store.chart_for_source("sha256:abc") is None


def test_source_files_are_remembered_where_last_seen(tmp_path, charts):
    store = LocalStore(tmp_path / "store")
    chart_id = store.put(charts[0], source_hash="sha256:abc", source_path="lib/a.flac")
    assert store.source_files(chart_id) == [("sha256:abc", (Path.cwd() / "lib/a.flac"))]
    store.saw_source("sha256:abc", chart_id, tmp_path / "moved" / "a.flac")
    store.put(charts[0], source_hash="sha256:def")          # a copy seen, its path unknown
    assert store.source_files(chart_id) == [("sha256:abc", tmp_path / "moved" / "a.flac")]
    store.remove(chart_id)
    assert store.source_files(chart_id) == []


def test_a_store_made_before_source_paths_migrates_and_keeps_its_rows(tmp_path, charts):
    from chart_store.catalog import MIGRATIONS
    from chart_store.db import Database

    db = Database(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    db.migrate(MIGRATIONS[:1])                             # the first release's schema
    with db.transaction():
        db.execute("INSERT INTO charts VALUES ('c1', 't', 'a', '', 1.0, 'analyzed', 1, 0, "
                   "NULL, NULL)")
        db.execute("INSERT INTO sources VALUES ('sha256:old', 'c1')")
    db.close()
    store = LocalStore(tmp_path)
    assert store.chart_for_source("sha256:old") == "c1" and store.source_files("c1") == []
    store.saw_source("sha256:old", "c1", tmp_path / "song.mp3")
    assert store.source_files("c1") == [("sha256:old", tmp_path / "song.mp3")]


def test_identify_excerpt_and_unknown(tmp_path, charts):
    store = LocalStore(tmp_path)
    for chart in charts:
        store.put(chart)
    y = synth_song(2, duration_s=30.0, sr=SR)
    match = store.identify(fingerprint(y[int(12.5 * SR):int(17.5 * SR)], SR))
    assert match.chart_id == charts[2].id and match.title == "Song 2"
    assert abs(match.offset_s - 12.5) <= 0.13 and 0 < match.confidence <= 1
    assert store.identify(fingerprint(synth_song(77, duration_s=6.0, sr=SR), SR)) is None
    store.remove(charts[2].id)  # the index follows removals
    assert store.identify(fingerprint(y[int(12.5 * SR):int(17.5 * SR)], SR)) is None


def test_human_chart_wins_for_the_same_recording(tmp_path):
    y = synth_song(5, duration_s=30.0, sr=SR)
    analyzed = song_chart(5, y=y, title="Generated")
    human = song_chart(5, y=y, title="Human", source=Source.IMPORTED_HUMAN)
    store = LocalStore(tmp_path)
    store.put(human)
    store.put(analyzed)
    match = store.identify(fingerprint(y[5 * SR:10 * SR], SR))
    assert match.chart_id == human.id and match.title == "Human"


def test_chart_without_fingerprint_is_stored_not_indexed(tmp_path):
    chart = Chart(ChartMeta("No print"), {"easy": [Note(1.0)]})
    store = LocalStore(tmp_path)
    store.put(chart)
    assert store.get(chart.id) == chart
    assert store.identify(Fingerprint(np.arange(30, dtype=np.uint32))) is None


def test_other_processes_see_changes(tmp_path, charts):
    reader = LocalStore(tmp_path)
    assert reader.identify(charts[1].fingerprint) is None
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_put_charts, args=(str(tmp_path), [1]))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    assert reader.identify(Fingerprint(charts[1].fingerprint.items[20:60])).title == "Song 1"


def _put_charts(root, seeds):
    store = LocalStore(root)
    for seed in seeds:
        store.put(_small_chart(seed) if seed >= 1000 else song_chart(seed),
                  source_hash=f"src-{seed}")


def _small_chart(seed: int) -> Chart:
    """A distinct chart without audio work: random fingerprint items, random notes."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0, 100, 200))
    return Chart(ChartMeta(f"Chart {seed}", "Proc", duration_s=100.0),
                 {"expert": [Note(float(t), lane=int(rng.integers(0, 5))) for t in times]},
                 fingerprint=Fingerprint(rng.integers(0, 2**32, 800, dtype=np.uint32)))


def test_concurrent_writer_processes_lose_nothing(tmp_path):
    seeds = [list(range(1000 + 10 * w, 1010 + 10 * w)) for w in range(4)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_put_charts, args=(str(tmp_path), s)) for s in seeds]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = LocalStore(tmp_path)
    stored = {c.chart_id for c in store.list()}
    assert stored == {_small_chart(s).id for w in seeds for s in w}
    for w in seeds:
        for s in w:
            assert store.chart_for_source(f"src-{s}") == _small_chart(s).id
    items = _small_chart(1023).fingerprint.items
    assert store.identify(Fingerprint(items[100:140])).title == "Chart 1023"


def _write_forever(root, first_seed):
    store = LocalStore(root)
    seed = first_seed
    while True:
        store.put(_small_chart(seed))
        seed += 1


def test_kill_9_mid_write_leaves_a_consistent_store(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    rng = np.random.default_rng(0)
    watcher = LocalStore(tmp_path)
    for round_ in range(4):
        before = len(watcher.list())
        proc = ctx.Process(target=_write_forever, args=(str(tmp_path), 2000 + 1000 * round_))
        proc.start()
        deadline = time.monotonic() + 120
        while len(watcher.list()) <= before and time.monotonic() < deadline:
            time.sleep(0.01)  # until the writer is busy writing
        time.sleep(rng.uniform(0, 0.3))  # then somewhere in the middle of a put
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    store = LocalStore(tmp_path)
    with sqlite3.connect(tmp_path / "store.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    listed = store.list()
    assert listed, "the writers should have stored something"
    for info in listed:  # every row has a complete, readable file with the right content
        chart = read_chart(store.path(info.chart_id))
        assert chart.id == info.chart_id
    last = store.get(listed[-1].chart_id)
    assert store.identify(Fingerprint(last.fingerprint.items[300:340])).chart_id == last.id
    # Files without a row (killed between rename and commit) are complete charts, harmless.
    for path in store.charts_dir.glob("*/*.chart"):
        assert dumps(read_chart(path))


def test_a_stale_temporary_file_is_cleaned(tmp_path, charts):
    store = LocalStore(tmp_path)
    store.put(charts[0])
    stray = store.path(charts[0].id).parent / ".half.chart.0123456789ab.tmp"
    stray.write_bytes(b"half a chart")
    os.utime(stray, (time.time() - 7200, time.time() - 7200))
    LocalStore(tmp_path)
    assert not stray.exists()

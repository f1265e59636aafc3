"""companion.listen.Listener: when a song counts as identified, against a real local store.

A match from a short window (under ``sure_window_s``) of a song other than the one playing is
acted on only when the next attempt, with a longer window, names the same chart at the same
place; at 100,000 indexed tracks half of the 3 s excerpts of unknown songs still find a chart.
"""
from __future__ import annotations

import numpy as np
import pytest

from chart_store.local import LocalStore
from companion.listen import Listener, MonoRing
from tests.fixtures.songs import song_chart, synth_song

SR = 22050
BLOCK = 1024


@pytest.fixture(scope="module")
def songs():
    return {seed: synth_song(seed, duration_s=40.0, sr=SR) for seed in (3, 8)}


@pytest.fixture
def store(songs):
    store = LocalStore()
    for seed, y in songs.items():
        store.put(song_chart(seed, y=y, sr=SR))
    return store


def listen(listener: Listener, stream: np.ndarray, *, ring_s: float | None = None) -> list:
    """Feed ``stream`` block by block, as the app does; every event with its stream second."""
    ring = MonoRing(int((ring_s or listener.window_s) * SR) + BLOCK)
    events = []
    for pos in range(0, stream.size - BLOCK + 1, BLOCK):
        block = stream[pos:pos + BLOCK, None]
        ring.write_block(block, pos)
        events += listener.step(ring, silent=bool(np.abs(block).max() < 1e-4))
    return events


def first(events, kind):
    return next(e for e in events if e.kind == kind)


def test_a_short_window_match_waits_for_the_next_attempt_to_agree(store, songs):
    stream = songs[3][int(12.0 * SR):int(24.0 * SR)]  # joined 12 s into the song
    hasty = first(listen(Listener(store, sr=SR, analyze=False, sure_window_s=3.0), stream),
                  "identified")
    careful = first(listen(Listener(store, sr=SR, analyze=False), stream), "identified")
    assert hasty.chart.meta.title == careful.chart.meta.title == "Song 3"
    assert hasty.stream_s == pytest.approx(3.0, abs=0.1)
    assert careful.stream_s == pytest.approx(4.0, abs=0.1)  # 3 s, then 4 s agreeing
    assert careful.offset_s == pytest.approx(12.0, abs=0.13)


def test_a_window_long_enough_is_taken_at_its_word(store, songs):
    stream = songs[8][int(5.0 * SR):int(17.0 * SR)]
    listener = Listener(store, sr=SR, analyze=False, min_window_s=5.0)
    found = first(listen(listener, stream), "identified")
    assert found.chart.meta.title == "Song 8" and found.stream_s == pytest.approx(5.0, abs=0.1)


def test_a_song_change_is_confirmed_before_it_is_followed(store, songs):
    stream = np.concatenate([songs[3][int(2.0 * SR):int(14.0 * SR)],
                             songs[8][int(20.0 * SR):int(32.0 * SR)]])

    def changed(sure_window_s):
        listener = Listener(store, sr=SR, analyze=False, window_s=4.0, recheck_s=1.0,
                            sure_window_s=sure_window_s)
        return first(listen(listener, stream), "changed")

    hasty, careful = changed(4.0), changed(5.0)  # 4 s windows trusted alone, or not
    assert hasty.chart.meta.title == careful.chart.meta.title == "Song 8"
    assert careful.offset_s == pytest.approx(20.0 - 12.0, abs=0.13)
    # one more attempt (every_s later) to agree; the playing song's own rechecks never wait
    assert careful.stream_s - hasty.stream_s == pytest.approx(1.0, abs=0.1)


def test_after_a_seek_the_recheck_retries_soon_and_says_which_audio_it_heard(store, songs):
    # Song 3 plays from 0 s; at stream 12 s the player seeks (1 s of noise, then song 3 from
    # 25 s) and the sync asks for a recheck of the audio since the jump. The first attempts,
    # 3 s after it, hold too much noise to match: they are tried again every retry_s, not after
    # recheck_s, and count as no miss.
    rng = np.random.default_rng(0)
    noise = 0.05 * rng.standard_normal(SR).astype(np.float32)
    stream = np.concatenate([songs[3][:12 * SR], noise, songs[3][25 * SR:37 * SR]])
    listener = Listener(store, sr=SR, analyze=False)
    ring = MonoRing(int(listener.window_s * SR) + BLOCK)
    events = []
    for pos in range(0, stream.size - BLOCK + 1, BLOCK):
        ring.write_block(stream[pos:pos + BLOCK, None], pos)
        if pos <= 12 * SR < pos + BLOCK:
            listener.recheck(since=12 * SR)
        events += listener.step(ring, silent=False)
    assert not [e for e in events if e.kind == "lost"]
    after = [e for e in events if e.kind == "confirmed" and e.stream_s > 12.0]
    assert after and after[0].from_s == pytest.approx(12.0)
    assert after[0].stream_s < 12.0 + 5.0  # a retry, not the next regular recheck
    assert after[0].offset_s == pytest.approx(25.0 - 13.0, abs=0.13)


def test_warm_up_asks_the_local_store_only():
    """The one-off first fingerprint and lookup run before the audio does, without the
    network: a dead chart server is not asked (it would be backed off after a failure)."""
    from chart_store.resolver import ChartResolver

    resolver = ChartResolver(remote_url="http://127.0.0.1:9", timeout_s=0.5)  # nothing listens
    Listener(resolver, sr=SR, analyze=False).warm_up()
    assert resolver.asks_remote


def test_while_a_chart_plays_a_dead_server_never_stalls_the_rechecks(store, songs):
    """Inline (an offline run), rechecks run on the thread that judges the notes: they ask the
    local store only, so a server that accepts and never answers costs them nothing (a first
    identification asks it inline, at most its timeout; live it is asked beside the loop)."""
    import socket
    import time

    from chart_store.resolver import ChartResolver

    with socket.socket() as silent:               # a real server that never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        resolver = ChartResolver(store, remote_url=url, timeout_s=1.0)
        listener = Listener(resolver, sr=SR, analyze=False)
        song = songs[3][int(5.0 * SR):int(17.0 * SR)]
        unknown = np.random.default_rng(1).uniform(-0.3, 0.3, 20 * SR).astype(np.float32)
        ring = MonoRing(int(listener.window_s * SR) + BLOCK)
        slowest, events = 0.0, []
        stream = np.concatenate([song, unknown])
        for pos, block in enumerate(stream[:stream.size // BLOCK * BLOCK].reshape(-1, BLOCK)):
            ring.write_block(block[:, None], pos * BLOCK)
            playing, t0 = listener.chart is not None, time.perf_counter()
            events += listener.step(ring, silent=False)
            if playing:
                slowest = max(slowest, time.perf_counter() - t0)
            if events[-1:] and events[-1].kind == "lost":
                break
        kinds = [e.kind for e in events]
        assert kinds[0] == "identified" and kinds[-1] == "lost"   # rechecks failed on the noise
        assert slowest < 0.5 and resolver.asks_remote     # and never waited for the server
        # The next song is a first identification: the server is asked (and times out).
        ring.write_block(unknown[:BLOCK, None], ring.end)
        listener.step(ring, silent=False)
        assert not resolver.asks_remote


def test_live_a_server_that_never_answers_stalls_no_step_of_a_first_identification(songs):
    """Live (``background_remote``), the server is asked beside the loop: a first
    identification's steps never wait for it, and the lookup that timed out backs it off."""
    import socket
    import time

    from chart_store.resolver import ChartResolver

    with socket.socket() as silent:               # a real server that never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        resolver = ChartResolver(LocalStore(), remote_url=f"http://127.0.0.1:"
                                 f"{silent.getsockname()[1]}", timeout_s=1.0)
        listener = Listener(resolver, sr=SR, analyze=False, background_remote=True)
        ring = MonoRing(int(listener.window_s * SR) + BLOCK)
        stream = songs[3][:int(6.0 * SR) // BLOCK * BLOCK].reshape(-1, BLOCK)
        slowest = 0.0
        for pos, block in enumerate(stream):
            ring.write_block(block[:, None], pos * BLOCK)
            t0 = time.perf_counter()
            assert listener.step(ring, silent=False) == []
            slowest = max(slowest, time.perf_counter() - t0)
        assert slowest < 0.5 and resolver.asks_remote     # still waiting for its answer
        deadline = time.monotonic() + 5.0
        while resolver.asks_remote and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not resolver.asks_remote                   # timed out beside the loop
        assert listener.step(ring, silent=False) == []    # its empty answer taken


def test_live_a_song_only_the_server_knows_is_identified_from_its_answers(songs, tmp_path):
    """The server's answers come back in later steps and count as the inline ones do: a short
    window's match waits for the next to agree, then the chart (cached locally) is played."""
    import time

    from chart_store.client import RemoteStore
    from chart_store.resolver import ChartResolver
    from tests.fixtures.chart_server import issue_token, start_server, stop_server

    db_url = f"sqlite:///{tmp_path / 'server.sqlite3'}"
    token = issue_token(db_url, "tester")
    proc, url = start_server(db_url)
    try:
        chart_id = RemoteStore(url, token).put(song_chart(8, y=songs[8], sr=SR)).chart_id
        local = LocalStore()
        listener = Listener(ChartResolver(local, remote_url=url), sr=SR, analyze=False,
                            background_remote=True)
        ring = MonoRing(int(listener.window_s * SR) + BLOCK)
        stream = songs[8][int(9.0 * SR):int(21.0 * SR)]
        events = []
        for pos, block in enumerate(stream[:stream.size // BLOCK * BLOCK].reshape(-1, BLOCK)):
            ring.write_block(block[:, None], pos * BLOCK)
            events += listener.step(ring, silent=False)
            time.sleep(BLOCK / SR / 4)                    # four times real time
    finally:
        stop_server(proc)
    found = first(events, "identified")
    assert found.chart.id == chart_id and chart_id in local
    assert 4.0 <= found.stream_s < 8.0                    # after a second answer agreed
    assert found.offset_s == pytest.approx(9.0, abs=0.13)


def test_an_unknown_song_is_recorded_to_disk_as_it_plays_and_its_silence_cut(tmp_path):
    """A recording is written as it comes (an hour of an unknown stream is not held in memory)
    and ends at the song's last sound; one too short to chart leaves no file behind."""
    import soundfile

    rng = np.random.default_rng(4)
    unknown = synth_song(21, duration_s=30.0, sr=SR)  # in no store
    silence = np.zeros(3 * SR, np.float32)
    listener = Listener(LocalStore(), sr=SR, analyze=False, recordings_dir=tmp_path / "rec")
    events = listen(listener, np.concatenate([unknown, silence,
                                              0.3 * rng.standard_normal(12 * SR), silence]))
    kinds = [e.kind for e in events]
    assert kinds.count("recording") == 2 and kinds.count("recorded") == 1  # 12 s: too short
    (recorded,) = [e for e in events if e.kind == "recorded"]
    y, sr = soundfile.read(recorded.path, dtype="float32")
    assert sr == SR and abs(y.size / SR - 30.0) < 0.2 and abs(y[-1]) > 0  # up to the last sound
    assert [p.name for p in (tmp_path / "rec").iterdir()] == [recorded.path.name]  # no .part


def test_a_song_nobody_charted_after_a_known_one_drops_its_chart_within_seconds(store, songs,
                                                                                tmp_path):
    """The old chart's notes are judged over the new song until it is dropped: after a recheck
    misses, the next comes a second later (not the usual 5 s), so three misses take ~2 s."""
    import soundfile

    other = synth_song(31, duration_s=30.0, sr=SR)  # in no store
    stream = np.concatenate([songs[3][int(5.0 * SR):int(25.0 * SR)], other[:28 * SR],
                             np.zeros(3 * SR, np.float32)])
    listener = Listener(store, sr=SR, analyze=False, recordings_dir=tmp_path / "rec")
    events = listen(listener, stream, ring_s=30.0)   # as long as the live session's
    lost = first(events, "lost")
    assert first(events, "identified").chart.meta.title == "Song 3"
    assert 20.0 < lost.stream_s <= 20.0 + 9.0    # it took 15 s and more
    # The new song is recorded from about where the old one last matched, not with the old
    # song's 20 s before it (a chart of that recording would answer for the old song too).
    y, _ = soundfile.read(first(events, "recorded").path, dtype="float32")
    assert 28.0 - 3.0 <= y.size / SR <= 28.0 + 6.0

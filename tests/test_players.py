"""Players: autoplay, miss-all, keyboard queue, replay files and replay determinism."""
import json
import queue

import numpy as np
import pytest

from chart_store.chart import Note, Track
from companion.game.engine import GameEngine
from companion.game.players import (
    AutoPlayer, InputRecorder, KeyboardPlayer, KeyEvent, MissAllPlayer, PlayerSpecError,
    ReplayError, ReplayPlayer, default_keys, feed, make_player,
)


@pytest.fixture
def track():
    rng = np.random.default_rng(3)
    times = np.round(np.sort(rng.uniform(0.5, 20, 120)), 3)
    notes = [Note(float(t), dur=0.4 if i % 7 == 0 else 0.0, lane=int(rng.integers(0, 5)))
             for i, t in enumerate(times)]
    notes += [Note(21.0, lane=0), Note(21.0, lane=3)]  # a chord
    return Track(tuple(sorted(notes, key=lambda n: (n.t, n.lane))))


def run(engine, player, *, until, fps=120):
    out = []
    for now in np.arange(0, until, 1 / fps):
        out += feed(engine, player, float(now))
    return out + feed(engine, player, until)


def test_autoplay_hits_everything_perfectly_and_holds_sustains(track):
    engine = GameEngine(track)
    js = run(engine, make_player("autoplay", track=track), until=25)
    assert len(js) == len(track) and all(j.result == "perfect" for j in js)
    r = engine.results()
    assert r.accuracy == 1.0 and r.max_combo == len(track)
    # A sustain is held unless the next note of its lane starts before its end.
    def blocked(note):
        return any(n.lane == note.lane and note.t < n.t < note.end for n in track)
    held = {s.note_index for s in engine.sustain_results if s.held}
    sustains = {i for i, n in enumerate(track) if n.dur > 0 and not blocked(n)}
    assert sustains and held == sustains


def test_miss_all_misses_everything(track):
    engine = GameEngine(track)
    js = run(engine, MissAllPlayer(), until=25)
    assert len(js) == len(track) and {j.result for j in js} == {"miss"}
    assert engine.score == 0 and engine.accuracy == 0.0


def test_replay_reproduces_a_run_exactly(track, tmp_path):
    """Record a noisy human-like run with irregular frame times, replay it at another rate."""
    rng = np.random.default_rng(11)
    keys = queue.SimpleQueue()
    events = []
    for note in track:
        if rng.random() < 0.85:
            down = note.t + rng.normal(0, 0.035)
            events += [(down, note.lane, True), (max(note.end, down + 0.04), note.lane, False)]
    events.sort()
    path = tmp_path / "run.replay.jsonl"
    with InputRecorder(path, chart_id="test", difficulty="expert") as recorder:
        live = GameEngine(track, on_input=recorder)
        player = KeyboardPlayer(keys, clock=lambda wall: wall - 100.0)  # wall clock = chart + 100
        live_js, i = [], 0
        frames = np.cumsum(rng.uniform(0.004, 0.03, 2000))
        for now in frames[frames < 25]:
            # Key events reach the queue a little after they happen, as from a window thread.
            while i < len(events) and events[i][0] <= now:
                t, lane, pressed = events[i]
                keys.put(KeyEvent(lane, pressed, t + 100.0))
                i += 1
            live_js += feed(live, player, float(now))
        live_js += feed(live, player, 30.0)

    replay = ReplayPlayer(path)
    assert replay.header["chart_id"] == "test"
    again = GameEngine(track)
    replay_js = run(again, make_player(f"replay:{path}"), until=30, fps=60)
    assert replay_js == live_js
    assert again.results() == live.results()
    assert 0 < live.misses < len(track)


def test_keyboard_player_holds_back_future_inputs():
    keys = queue.SimpleQueue()
    player = KeyboardPlayer(keys, clock=lambda wall: wall)
    keys.put(KeyEvent(1, True, 2.0))
    keys.put(KeyEvent(0, True, 1.0))
    assert [(e.lane, e.time) for e in player.poll(1.5)] == [(0, 1.0)]
    assert [(e.lane, e.time) for e in player.poll(2.5)] == [(1, 2.0)]
    assert player.poll(3.0) == []


def test_autoplay_releases_before_the_next_note_in_its_lane():
    track = Track((Note(1.0, lane=0), Note(1.02, lane=0)))
    events = AutoPlayer(track).poll(5)
    assert [(e.pressed, round(e.time, 3)) for e in events] == [
        (True, 1.0), (False, 1.01), (True, 1.02), (False, 1.07)]


def test_bad_replay_files_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"format":"loopjam-replay","version":1}\n{"lane":0,"pressed":true}\n')
    with pytest.raises(ReplayError, match=r"bad.jsonl:2"):
        ReplayPlayer(path)
    path.write_text('{"format":"other","version":1}\n')
    with pytest.raises(ReplayError, match="bad.jsonl:1"):
        ReplayPlayer(path)
    with pytest.raises(ReplayError, match="missing.jsonl"):
        ReplayPlayer(tmp_path / "missing.jsonl")
    path.write_text(json.dumps({"lane": -1, "pressed": True, "t": 1}) + "\n")
    with pytest.raises(ReplayError, match="lane"):
        ReplayPlayer(path)
    path.write_text('{"lane": 0, "t": 1}\n')
    with pytest.raises(ReplayError, match="""bad.jsonl:1: no 'pressed' in {"lane": 0"""):
        ReplayPlayer(path)


def test_make_player_names_the_choices():
    with pytest.raises(PlayerSpecError, match="autoplay, miss-all"):
        make_player("robot")
    with pytest.raises(PlayerSpecError, match="key queue"):
        make_player("keyboard")
    assert make_player("miss-all").name == "miss-all"
    assert default_keys(5) == ("d", "f", "space", "j", "k")
    with pytest.raises(PlayerSpecError):
        default_keys(8)

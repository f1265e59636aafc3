"""The game engine on synthetic tracks and input sequences with exact expected judgements."""
import numpy as np
import pytest

from chart_store.chart import Note, Track
from companion.game.engine import (
    GameEngine, GameError, NoteState, POINTS, SUSTAIN_POINTS_PER_S, Windows,
)


def play(track, presses, until, **kw):
    """presses: (lane, t_down, t_up) triples."""
    engine = GameEngine(Track(tuple(track)), **kw)
    for lane, down, up in presses:
        engine.queue_input(lane, True, down)
        engine.queue_input(lane, False, up)
    return engine, engine.update(until)


def test_windows_classify_each_boundary():
    w = Windows()
    assert [w.classify(e) for e in (0, 25, -25, 25.01, 50, -50.5, 90, -90, 90.01)] == [
        "perfect", "perfect", "perfect", "great", "great", "good", "good", "good", "miss"]
    with pytest.raises(GameError):
        Windows(perfect_ms=60, great_ms=50)


def test_single_notes_exact_results_and_errors():
    notes = [Note(1.0, lane=0), Note(2.0, lane=1), Note(3.0, lane=2), Note(4.0, lane=3)]
    presses = [(0, 1.010, 1.05), (1, 1.960, 2.05), (2, 3.080, 3.1)]  # lane 3 never pressed
    engine, js = play(notes, presses, until=10)
    assert [(j.note_index, j.result) for j in js] == [
        (0, "perfect"), (1, "great"), (2, "good"), (3, "miss")]
    assert js[0].error_ms == pytest.approx(10) and js[1].error_ms == pytest.approx(-40)
    assert js[3].error_ms is None and js[3].time == pytest.approx(4.09)
    assert (engine.hits, engine.misses, engine.combo, engine.max_combo) == (3, 1, 0, 3)
    assert engine.score == 100 + 70 + 40
    assert engine.accuracy == pytest.approx((1 + 0.7 + 0.4) / 4)
    assert engine.note_states.tolist() == [NoteState.HIT] * 3 + [NoteState.MISSED]
    assert engine.finished


def test_press_outside_window_is_stray_and_note_misses():
    engine, js = play([Note(1.0, lane=0)], [(0, 0.8, 0.85), (0, 1.2, 1.25)], until=2)
    assert [j.result for j in js] == ["miss"]
    assert engine.stray_presses == 2


def test_wrong_lane_does_not_hit():
    engine, js = play([Note(1.0, lane=0)], [(1, 1.0, 1.05)], until=2)
    assert [j.result for j in js] == ["miss"]


def test_a_press_hits_the_earliest_open_note_of_its_lane():
    # Two notes 60 ms apart in one lane: the first press takes the first, the second the second.
    notes = [Note(1.00, lane=0), Note(1.06, lane=0)]
    engine, js = play(notes, [(0, 1.02, 1.04), (0, 1.05, 1.055)], until=2)
    assert [(j.note_index, j.result) for j in js] == [(0, "perfect"), (1, "perfect")]
    assert js[1].error_ms == pytest.approx(-10)


def test_nothing_is_final_before_its_window_closes():
    engine = GameEngine(Track((Note(1.0, lane=0),)))
    assert engine.update(1.09) == []
    assert engine.note_states[0] == NoteState.PENDING
    assert [j.result for j in engine.update(1.0901)] == ["miss"]


def test_chord_needs_every_lane_and_takes_the_worst_press():
    chord = [Note(1.0, lane=0), Note(1.0, lane=2), Note(1.0, lane=4)]
    engine, js = play(chord, [(0, 1.0, 1.1), (2, 1.03, 1.1), (4, 0.94, 1.1)], until=2)
    assert [j.result for j in js] == ["good"] * 3            # worst press: -60 ms
    assert [round(j.error_ms) for j in js] == [0, 30, -60]
    assert {j.time for j in js} == {1.03}                     # judged when the last lane came
    assert engine.combo == 3 and engine.score == 3 * POINTS["good"]

    engine, js = play(chord, [(0, 1.0, 1.1), (2, 1.0, 1.1)], until=2)
    assert [j.result for j in js] == ["miss"] * 3             # one lane missing: chord missed
    assert engine.hits == 0 and engine.misses == 3


def test_sustain_held_to_end_earns_bonus_released_early_does_not():
    notes = [Note(1.0, dur=2.0, lane=1)]
    engine, js = play(notes, [(1, 1.0, 3.5)], until=4)
    assert js[0].result == "perfect"
    [s] = engine.sustain_results
    assert s.held and s.bonus == 2 * SUSTAIN_POINTS_PER_S and s.time == pytest.approx(3.0)
    assert engine.score == POINTS["perfect"] + 2 * SUSTAIN_POINTS_PER_S

    engine, _ = play(notes, [(1, 1.0, 2.0)], until=4)
    [s] = engine.sustain_results
    assert not s.held and s.bonus == 0 and s.time == pytest.approx(2.0)
    assert engine.score == POINTS["perfect"] and engine.combo == 1  # combo kept

    # Released within the release window before the end still counts as held.
    engine, _ = play(notes, [(1, 1.0, 2.95)], until=4)
    assert engine.sustain_results[0].held


def test_sustain_state_while_held():
    engine = GameEngine(Track((Note(1.0, dur=1.0, lane=2),)))
    engine.queue_input(2, True, 1.0)
    engine.update(1.5)
    assert engine.held_sustains == {2: 0} and engine.pressed_lanes == {2}
    assert not engine.finished
    engine.update(2.0)
    assert engine.held_sustains == {} and engine.sustain_results[0].held


def test_combo_multiplier_and_score():
    notes = [Note(1.0 + 0.2 * i, lane=i % 4) for i in range(35)]
    engine, js = play(notes, [(n.lane, n.t, n.t + 0.05) for n in notes], until=20)
    assert all(j.result == "perfect" for j in js)
    assert engine.score == 100 * (10 * 1 + 10 * 2 + 10 * 3 + 5 * 4)
    assert engine.max_combo == 35 and engine.multiplier == 4
    r = engine.results()
    assert (r.hits, r.misses, r.perfect, r.notes, r.accuracy) == (35, 0, 35, 35, 1.0)


def test_miss_resets_combo_and_multiplier():
    notes = [Note(1.0 + 0.2 * i, lane=0) for i in range(12)]
    presses = [(0, n.t, n.t + 0.05) for i, n in enumerate(notes) if i != 5]
    engine, js = play(notes, presses, until=10)
    assert engine.max_combo == 6 and engine.combo == 6 and engine.misses == 1
    assert engine.score == 100 * 11


def test_late_input_is_applied_at_the_engine_time():
    engine = GameEngine(Track((Note(1.0, lane=0),)))
    engine.update(1.02)
    engine.queue_input(0, True, 1.0)  # stamped in the past: applied at 1.02
    [j] = engine.update(1.05)
    assert j.error_ms == pytest.approx(20)


def test_key_repeat_is_not_a_second_press():
    notes = [Note(1.0, lane=0), Note(1.05, lane=0)]
    engine = GameEngine(Track(tuple(notes)))
    for t in (1.0, 1.03, 1.05):
        engine.queue_input(0, True, t)
    js = engine.update(2)
    assert [j.result for j in js] == ["perfect", "miss"]


def test_skip_to_leaves_earlier_notes_unjudged():
    notes = [Note(t, lane=0) for t in (1.0, 2.0, 3.0)]
    engine = GameEngine(Track(tuple(notes)))
    engine.skip_to(2.5)
    engine.queue_input(0, True, 3.0)
    js = engine.update(5)
    assert [(j.note_index, j.result) for j in js] == [(2, "perfect")]
    assert engine.note_states.tolist() == [NoteState.SKIPPED] * 2 + [NoteState.HIT]
    assert (engine.hits, engine.misses, engine.accuracy) == (1, 0, 1.0)


def test_incremental_updates_equal_one_update():
    rng = np.random.default_rng(7)
    times = np.sort(rng.uniform(0, 30, 200))
    notes = [Note(float(t), dur=float(rng.choice([0, 0, 0.5])), lane=int(rng.integers(0, 5)))
             for t in times]
    presses = [(n.lane, n.t + rng.normal(0, 0.04), n.t + 0.03 + n.dur * rng.uniform(0.5, 1.2))
               for n in notes if rng.random() < 0.9]

    def run(steps):
        engine = GameEngine(Track(tuple(notes)))
        for lane, down, up in presses:
            engine.queue_input(lane, True, down)
            engine.queue_input(lane, False, up)
        out = []
        for t in steps:
            out += engine.update(t)
        return out, engine.results()

    once = run([40.0])
    assert run(np.arange(0, 40.001, 1 / 144)) == once
    assert once[1].hits + once[1].misses == len(notes)


def test_chord_sustain_released_before_the_chord_completes_is_dropped():
    notes = [Note(1.0, dur=1.0, lane=0), Note(1.0, lane=1)]
    engine, js = play(notes, [(0, 0.96, 0.98), (1, 1.02, 1.1)], until=3)
    assert [j.result for j in js] == ["great", "great"]
    [s] = engine.sustain_results
    assert not s.held and s.bonus == 0 and s.time == pytest.approx(1.02)
    assert engine.results().sustains == 1 and engine.results().sustains_held == 0

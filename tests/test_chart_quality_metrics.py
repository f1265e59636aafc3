"""benchmarks.chart_quality.run: the figures that compare a generated chart with a human one,
on small charts whose answers are known."""
import numpy as np
import pytest

from benchmarks.chart_quality.run import (best_shift_scores, feel_scores, lane_changes, lane_use,
                                         on_human_beats, onset_shapes, onset_times)
from chart_store.chart import Note


def _chart(rows):
    """Notes from (t, lane, dur) rows; rows with the same t are a chord."""
    return tuple(Note(t, dur, lane, 60, "guitar") for t, lane, dur in rows)


def test_a_chord_is_one_onset_at_its_mean_lane():
    lane, chord, held = onset_shapes(_chart([(0.0, 0, 0), (0.0, 1, 0.5), (1.0, 3, 0)]))
    np.testing.assert_array_equal(lane, [0.5, 3.0])
    np.testing.assert_array_equal(chord, [True, False])
    np.testing.assert_array_equal(held, [True, False])


def test_notes_a_few_milliseconds_apart_are_one_chord():
    # An unquantised chord from a DAW (YARG snaps notes 16 ticks apart into one); the onsets
    # 30 ms apart stay two.
    rows = [(1.0, 0, 0), (1.012, 2, 0), (1.005, 1, 0), (2.0, 0, 0), (2.03, 1, 0)]
    np.testing.assert_allclose(onset_times(_chart(rows)), [1.0, 2.0, 2.03])
    lane, chord, _ = onset_shapes(_chart(rows))
    np.testing.assert_allclose(lane, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(chord, [True, False, False])


def test_lane_changes_count_moves_and_moves_undone():
    moved, undone = lane_changes(np.array([0, 1, 0, 0, 2, 3]))
    assert moved == pytest.approx(4 / 5)          # 0>1, 1>0, 0>2, 2>3
    assert undone == pytest.approx(1 / 3)         # of the moves followed by a move, 0>1 is undone
    assert lane_changes(np.array([2])) == (0.0, 0.0)


def test_lane_use_is_the_share_of_notes_per_lane():
    use = lane_use(_chart([(0.0, 0, 0), (0.5, 0, 0), (1.0, 2, 0), (1.5, 4, 0)]), lanes=5)
    np.testing.assert_allclose(use, [0.5, 0, 0.25, 0, 0.25])


def test_a_copy_of_the_human_chart_plays_exactly_like_it():
    human = _chart([(0.0, 0, 0), (0.5, 1, 0), (1.0, 1, 0.4), (1.0, 2, 0.4), (2.0, 4, 0),
                    (2.5, 3, 0), (3.0, 3, 0.6)])
    feel = feel_scores(human, human, 0.0)
    assert feel["lane_motion"] == 1.0
    assert feel["sustained"] == {"human": 0.3333, "generated": 0.3333, "f1": 1.0}   # 2 of 6
    assert feel["chords"]["f1"] == 1.0
    assert feel["lane_use"]["l1"] == 0.0


def test_lanes_mirrored_move_the_other_way_and_shifted_notes_still_match():
    rows = [(0.5 * k, lane, 0) for k, lane in enumerate([0, 1, 2, 3, 4, 3, 2, 1, 0, 1])]
    human = _chart(rows)
    mirrored = _chart([(t + 0.03, 4 - lane, dur) for t, lane, dur in rows])   # 30 ms late
    feel = feel_scores(human, mirrored, 0.03)
    assert feel["lane_motion"] == 0.0             # every move the other way
    assert 0.0 < feel["lane_motion_chance"] < 1.0
    assert feel["lane_use"]["l1"] == pytest.approx(0.4)


def test_beats_on_the_human_beats_at_any_offset_and_in_half_time():
    human = 0.1 + np.arange(110) * 0.6                       # 100 BPM, counted in half time
    ours = 0.1 + 0.17 + np.arange(200) * 0.3                 # 200 BPM, 0.17 s off: all on it
    assert on_human_beats(ours, human) == pytest.approx(1.0)
    jitter = ours + np.tile([0.0, 0.025, -0.025, 0.0], 50)  # half of them 25 ms off
    assert on_human_beats(jitter, human) == pytest.approx(0.5)
    # A break that moves the phase: each 64 beats at their own offset.
    moved = np.r_[ours[:128], ours[127] + 0.05 + np.arange(1, 73) * 0.3]
    assert on_human_beats(moved, human) == pytest.approx(1.0)


def test_the_human_offset_is_where_the_notes_line_up_not_the_edge_of_the_best_shifts():
    # 200 notes on a 16th grid at 180 BPM, the generated ones 12 ms later. F ±50 ms is 1 at every
    # shift from -38 to +62 ms; with one generated note 40 ms late instead, from -10 ms.
    rng = np.random.default_rng(3)
    reference = np.sort(rng.choice(800, 200, replace=False)) * (60 / 180 / 4)
    estimate = reference + 0.012
    scores = best_shift_scores(reference, estimate)
    assert scores["f50"] == 1.0 and scores["offset_ms"] == 12 and scores["timing_ms"] == 0.0
    estimate = np.sort(np.r_[estimate[1:], reference[0] + 0.040])
    scores = best_shift_scores(reference, estimate)
    assert scores["f50"] == 1.0 and scores["shift_ms"] != 12 and scores["offset_ms"] == 12

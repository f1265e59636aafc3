"""analyzer.beats on synthetic recordings with exact answers: the tempo, the beats where the
tempo holds, changes or drifts, the grid notes snap to, triplet feel and the counted pulse."""
import mir_eval
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.beats import (alternate_pulses, estimate_tempo, local_tempo, on_grid,
                            sixteenth_slots, snap_to_grid, steady_beats, track_beats,
                            triplet_feel)
from analyzer.onsets import (FRAME_RATE, NotesError, analysis_spectrogram, detect_onsets,
                             onset_strength)
from tests.plucked import render, riff, shuffle, tempo_change, tempo_ramp


@pytest.mark.parametrize("bpm", [104, 132, 160, 190])
def test_tempo_and_beats_of_a_steady_riff(bpm):
    r = riff(bpm=bpm, bars=10, seed=bpm)
    env = onset_strength(analysis_spectrogram(r.y, r.sr))
    tempo = track_beats(env)
    assert tempo.bpm == pytest.approx(bpm, rel=0.02)
    truth = r.beats[r.beats <= r.times[-1]]
    assert mir_eval.onset.f_measure(truth, tempo.beats, window=0.03)[0] >= 0.9


@pytest.mark.parametrize("first, second", [(110, 150), (140, 105)])
def test_the_tempo_and_the_beats_follow_a_change_of_tempo(first, second):
    song = tempo_change(first, second)
    env = onset_strength(analysis_spectrogram(song.y, song.sr))
    tempo = local_tempo(env)
    frame = lambda t: int(t * FRAME_RATE)
    assert tempo[frame(song.change_s / 2)] == pytest.approx(first, rel=0.01)
    assert tempo[frame((song.change_s + song.times[-1]) / 2)] == pytest.approx(second, rel=0.01)
    # The change is found within a window or two of where it is.
    changed = np.flatnonzero(np.abs(np.diff(tempo)) > 1)
    assert changed.size == 1 and abs(changed[0] / FRAME_RATE - song.change_s) <= 2.5
    truth = song.beats[song.beats <= song.times[-1]]
    assert mir_eval.onset.f_measure(truth, track_beats(env).beats, window=0.03)[0] >= 0.9


def test_the_beats_follow_a_tempo_that_speeds_up_steadily():
    # 100 -> 160 BPM over 160 beats: at one tempo the beat tracker loses it (beat F 0.63-0.67).
    song = tempo_ramp(100, 160)
    env = onset_strength(analysis_spectrogram(song.y, song.sr))
    assert mir_eval.beat.f_measure(song.beats, track_beats(env).beats) >= 0.95


def test_a_syncopated_figure_is_no_change_of_tempo():
    # 3+3+2 16ths over two beats at 140 BPM for 16 beats (it repeats every 2.67 8ths, not at a
    # slower tempo), then a riff on the beat: one tempo throughout.
    sixteenth = 60.0 / 140 / 4
    figure = 0.5 + np.concatenate([k * 8 * sixteenth + np.array([0, 3, 6]) * sixteenth
                                   for k in range(8)])
    rest = riff(bpm=140, bars=8, seed=3, t0=figure[-1] + 2 * sixteenth)
    times = np.concatenate([figure, rest.times])
    y = render(times, np.full(times.size, 45), sr=22050, duration_s=rest.y.size / 22050)
    env = onset_strength(analysis_spectrogram(y, 22050))
    tempo = local_tempo(env)
    assert np.all(np.abs(tempo / 140 - 1) < 0.01)


def test_triplet_feel_is_found_where_the_music_swings_and_only_there():
    straight = riff(bpm=130, bars=8, seed=4, fill=0.5)
    swung = shuffle(bpm=130, bars=8, seed=5, t0=straight.t0 + 8 * 4 * 60 / 130)
    times = np.concatenate([straight.times, swung.times])
    y = render(times, np.concatenate([straight.pitches, swung.pitches]), sr=22050,
               duration_s=swung.y.size / 22050)
    env = onset_strength(analysis_spectrogram(y, 22050))
    found = detect_onsets(env, threshold=0.1)
    beats = track_beats(env).beats
    feel = triplet_feel(found.times, found.strength, beats)
    change = swung.t0
    # Away from the change (the window reaches 4 beats either side), each half is what it is.
    far = np.abs(beats - change) > 5 * 60 / 130
    assert not feel[far & (beats < change)].any()
    assert feel[far & (beats > change) & (beats < swung.times[-1])].all()


def test_slow_songs_are_counted_in_double_time():
    # 75 BPM is below the charting range (100-220): its 8th notes are the charting beat.
    r = riff(bpm=75, bars=6, seed=1)
    env = onset_strength(analysis_spectrogram(r.y, r.sr))
    assert estimate_tempo(env) == pytest.approx(150, rel=0.02)



def test_sixteenth_slots_on_the_beat_grid():
    beats = np.array([1.0, 1.5, 2.0, 2.6])                 # the grid may breathe
    times = np.array([0.9, 1.0, 1.13, 1.74, 1.99, 2.3, 2.6, 2.7])
    np.testing.assert_array_equal(sixteenth_slots(times, beats),
                                  [-1, 0, 1, 6, 8, 10, 12, -1])
    assert sixteenth_slots(times, np.array([1.0])).tolist() == [-1] * times.size


def _tempos(beats):
    """How many stretches of one tempo (to the microsecond) the beats make."""
    return 1 + int(np.count_nonzero(np.abs(np.diff(np.diff(beats))) > 1e-6))


def test_steady_beats_keep_one_tempo_where_the_tracker_wandered():
    # 300 beats at 150 BPM tracked as a tracker does on a dense mix: jittery by up to 20 ms, on
    # the "and" for 30 beats twice, lost in an intro (+-20 % a beat) and a fill.
    rng = np.random.default_rng(3)
    truth = 0.37 + np.arange(300) * 0.4
    tracked = truth + rng.uniform(-0.02, 0.02, truth.size)
    tracked[60:90] += 0.2
    tracked[200:230] += 0.2
    tracked[:24] += rng.uniform(-0.08, 0.08, 24)
    tracked[140:146] += np.array([0.1, -0.1, 0.12, -0.05, 0.09, 0.0])
    steady = steady_beats(tracked)
    assert _tempos(steady) == 1 and steady.size == truth.size
    assert np.abs(steady - truth).max() < 0.003


def test_steady_beats_follow_a_change_of_tempo_a_break_and_a_tempo_that_moves():
    rng = np.random.default_rng(4)
    change = np.r_[np.arange(48) * 60 / 110, 47 * 60 / 110 + np.arange(1, 49) * 60 / 150]
    steady = steady_beats(change + rng.uniform(-0.012, 0.012, change.size))
    assert _tempos(steady) <= 3 and np.abs(steady - change).max() < 0.005
    # A break of 1.3 beats: two grids at one tempo, out of phase, and the beat between them.
    pause = 0.5 + np.r_[np.arange(40) * 0.5, 19.5 + 0.65 + np.arange(40) * 0.5]
    steady = steady_beats(pause + rng.uniform(-0.015, 0.015, pause.size))
    assert _tempos(steady) == 3 and np.abs(steady - pause).max() < 0.006
    # From 100 to 160 BPM over 160 beats: stretches of one tempo, each beat within 30 ms.
    ramp = np.r_[0.0, np.cumsum(60 / np.linspace(100, 160, 159))]
    steady = steady_beats(ramp + rng.uniform(-0.006, 0.006, ramp.size))
    assert steady.size == ramp.size and np.abs(steady - ramp).max() < 0.03
    assert _tempos(steady) <= 40


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0.15, 2.0), min_size=0, max_size=300), st.floats(0.0, 5.0))
def test_steady_beats_of_any_beats_are_beats(gaps, start):
    # Whatever a tracker gives (beats at least 0.15 s apart, as at 220 BPM pushed 40 % faster),
    # the published beats are ascending, finite and never before 0 s.
    beats = start + np.cumsum(gaps)
    steady = steady_beats(beats)
    assert np.all(np.isfinite(steady)) and np.all(np.diff(steady) > 0)
    assert steady.size == 0 or steady[0] >= 0.0


def test_on_grid_moves_only_what_is_near_a_16th_or_a_triplet():
    beats = np.arange(9) * 0.5
    times = np.array([0.13, 0.33, 0.4, 0.79, 4.2])   # near 1/4, near 2/3, neither, 3/4, after
    np.testing.assert_allclose(on_grid(times, beats, tolerance_s=0.01),
                               [0.125, 1 / 3, 0.4, 0.79, 4.2])
    np.testing.assert_allclose(on_grid(times, beats, tolerance_s=0.05)[3], 0.75)
    assert on_grid(times, beats[:1]).tolist() == times.tolist()


def test_snap_to_grid_puts_onsets_on_the_grid_they_were_played_on():
    rng = np.random.default_rng(3)

    def heard_on(played, beats):
        heard = played + rng.uniform(-0.005, 0.005, played.size)   # a detected onset: +-5 ms
        tracked = beats + rng.uniform(-0.006, 0.006, beats.size)   # a tracked beat: +-6 ms
        return np.abs(snap_to_grid(heard, tracked).times - played), np.abs(heard - played)

    # 16ths at 120 BPM; the tracked beats move onto the grid too.
    snapped, heard = heard_on(1.0 + np.arange(150) * 0.125, 1.0 + np.arange(40) * 0.5)
    assert np.median(snapped) < 0.001 and snapped.max() < 0.0025 < heard.max()
    tracked = 1.0 + np.arange(40) * 0.5 + rng.uniform(-0.006, 0.006, 40)
    grid = snap_to_grid(1.0 + np.arange(150) * 0.125, tracked)
    assert np.abs(grid.beats - (1.0 + np.arange(40) * 0.5))[:37].max() < 0.001
    # 16ths speeding up from 120 to 126 BPM: never further off than heard.
    beat_at = lambda b: 0.5 + b * 0.5 - 0.0003 * b ** 2            # noqa: E731
    snapped, heard = heard_on(beat_at(np.arange(4, 160) / 4), beat_at(np.arange(41)))
    assert np.median(snapped) < np.median(heard)
    # A band without a click: the beat wanders +-5 % over 16 beats. No line fits 9 beats of it
    # to within a detected onset's jitter, so the notes keep (about) the times they were heard.
    period = 0.5 * (1 + 0.05 * np.sin(np.arange(80) * np.pi / 8))
    beats = np.concatenate([[1.0], 1.0 + np.cumsum(period)])[:80]
    snapped, heard = heard_on(np.sort(np.r_[beats[:-1], (beats[:-1] + beats[1:]) / 2]), beats)
    assert np.median(snapped) <= 1.25 * np.median(heard)
    assert np.percentile(snapped, 90) <= 1.5 * np.percentile(heard, 90)
    # 8th-note triplets at 170 BPM sit 29 ms from the nearest 16th: they go on the triplet grid.
    beat_s = 60 / 170
    snapped, _ = heard_on(1.0 + np.arange(3, 120) * beat_s / 3, 1.0 + np.arange(42) * beat_s)
    assert snapped.max() < 0.0025
    # A beat track that slips (one beat 80 ms late) moves no note away from where it was played.
    played = 1.0 + np.arange(150) * 0.125
    beats = 1.0 + np.arange(40) * 0.5
    beats[20] += 0.08
    assert np.abs(snap_to_grid(played, beats).times - played).max() < 0.005
    # Notes in free time (uniformly anywhere) are left where they were heard.
    free = np.sort(rng.uniform(0, 20, 120))
    assert np.mean(snap_to_grid(free, np.arange(0, 21, 0.5)).times == free) >= 0.95
    # No grid, no onsets.
    assert snap_to_grid(free, np.array([1.0])).times.tolist() == free.tolist()
    assert snap_to_grid(np.zeros(0), np.arange(10.0)).times.size == 0


def test_alternate_pulses_takes_the_parity_with_more_weight_nearby():
    pulses = np.arange(40) * 0.25
    # Notes on even pulses (heavier) up to 5 s, then on odd ones; one stray odd note early.
    times = np.concatenate([np.arange(0, 5.0, 0.5), [1.25], np.arange(5.25, 10.0, 0.5)])
    order = np.argsort(times)
    weight = np.concatenate([np.ones(10), [3.0], np.ones(10)])[order]
    out = alternate_pulses(pulses, times[order], weight, window=4)
    assert out.size == 20
    np.testing.assert_allclose(out[:8], np.arange(8) * 0.5)
    np.testing.assert_allclose(out[12:], 6.25 + np.arange(8) * 0.5)
    # A note off every pulse counts nowhere; ties (nothing near) keep the even pulses.
    np.testing.assert_allclose(alternate_pulses(pulses, np.array([0.11]), np.ones(1)),
                               pulses[::2])
    with pytest.raises(NotesError):
        alternate_pulses(pulses, np.zeros(3), np.ones(2))
    # Fewer pairs than the window (a short song), and none at all.
    few = alternate_pulses(pulses[:6], np.array([0.25, 0.75, 1.25]), np.ones(3))
    np.testing.assert_allclose(few, [0.25, 0.75, 1.25])
    assert alternate_pulses(pulses[:1], np.array([0.0]), np.ones(1)).size == 0

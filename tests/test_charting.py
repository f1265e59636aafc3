"""analyzer.charting: synthetic riffs with exact answers → notes, lanes, chords, sustains and
difficulties that are playable and ordered."""
import mir_eval
import numpy as np
import pytest

from analyzer import beats as beat_analysis
from analyzer import charting
from analyzer import notes as note_analysis
from analyzer import onsets as onset_analysis
from analyzer.formats.tempo import TempoMap
from analyzer.stems import Stems
from chart_store.chart import DIFFICULTIES, Chart, ChartMeta, Note
from tests.plucked import brickwall, render, riff, shuffle, tempo_change


@pytest.fixture(scope="module")
def riff_120():
    return riff(bpm=120, bars=12, seed=11)


@pytest.fixture(scope="module")
def charted(riff_120):
    return charting.chart_notes(riff_120.y, riff_120.sr)


def _onsets(notes):
    return np.unique([n.t for n in notes])


def test_expert_finds_the_played_notes_at_their_pitches(riff_120, charted):
    expert = charted.difficulties["expert"]
    # Below 0.9: a clean re-pluck of the previous pitch brings no new partials and needs twice
    # the strength (analyzer.charting.NEW_PARTIALS_FLOOR); this riff's weak ones are dropped.
    f, precision, _ = mir_eval.onset.f_measure(riff_120.times, _onsets(expert), window=0.05)
    assert f >= 0.85 and precision >= 0.95
    changed = np.r_[True, riff_120.pitches[1:] != riff_120.pitches[:-1]]
    matched = mir_eval.util.match_events(riff_120.times, _onsets(expert), 0.05)
    assert len({i for i, _ in matched} & set(np.flatnonzero(changed))) >= 0.8 * changed.sum()
    pitch_at = {}
    for note in expert:
        pitch_at.setdefault(note.t, note.pitch)   # a chord's first note carries its root
    matched = mir_eval.util.match_events(riff_120.times, _onsets(expert), 0.05)
    right = [riff_120.pitches[i] == pitch_at[_onsets(expert)[j]] for i, j in matched]
    assert np.mean(right) >= 0.9


def test_notes_are_on_the_grid_the_riff_was_played_on(riff_120, charted):
    # Detected onsets sit up to half an 11.6 ms frame off (median 2.8 ms here); snapped to the
    # grid fitted to them, the notes are evenly spaced again.
    found = _onsets(charted.difficulties["expert"])
    pairs = mir_eval.util.match_events(riff_120.times, found, 0.05)
    offset = np.array([found[j] - riff_120.times[i] for i, j in pairs])
    assert np.median(np.abs(offset - np.median(offset))) < 0.001
    # The chart is published on one tempo, as a charter would write it: exported (notes.mid,
    # .sm), its tempo map holds 120 BPM (and a pickup to the first beat), and the notes fall on
    # its 16th-note ticks (about half do on the tracked beats).
    tempo = TempoMap.from_beats(charted.beats, resolution=480)
    assert len(tempo.ticks) <= 2 and 60 / tempo.beat_s[-1] == pytest.approx(120, abs=0.05)
    ticks = np.array([tempo.tick_at(t) for t in found])
    assert np.mean(np.abs((ticks + 60) % 120 - 60) <= 2) >= 0.95


def test_tempo_and_beats(riff_120, charted):
    assert charted.bpm == pytest.approx(120, rel=0.02)
    truth = riff_120.beats[riff_120.beats <= riff_120.times[-1]]
    assert mir_eval.onset.f_measure(truth, charted.beats, window=0.03)[0] >= 0.9


def test_notes_are_valid_chart_notes(charted):
    assert set(charted.difficulties) == set(DIFFICULTIES)
    for notes in charted.difficulties.values():
        assert all(isinstance(n, Note) and n.mask is None and n.stem == "mix" for n in notes)
    # The chart model accepts them as they are.
    Chart(ChartMeta("riff"), dict(charted.difficulties), lanes=5, beats=charted.beats)


def test_difficulties_are_ordered_and_keep_their_gaps(charted):
    counts = [len(_onsets(charted.difficulties[d])) for d in DIFFICULTIES]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    beat = 60.0 / charted.bpm
    for name in DIFFICULTIES:
        gaps = np.diff(_onsets(charted.difficulties[name]))
        rule = charting.RULES[name]
        shortest = max(rule.min_gap_s, rule.min_gap_beats * beat * (1 - charting.GAP_SLACK))
        assert gaps.min() >= shortest - 1e-9, name
    # Easier levels keep what harder ones keep on the beat: thinning drops runs, not downbeats.
    hard = set(np.round(_onsets(charted.difficulties["hard"]), 3))
    easy = np.round(_onsets(charted.difficulties["easy"]), 3)
    assert np.mean([t in hard for t in easy]) >= 0.9


@pytest.mark.parametrize("lanes", [4, 5, 6, 7])
def test_lane_count_and_narrower_easy_levels(riff_120, lanes):
    cn = charting.chart_notes(riff_120.y, riff_120.sr, lanes=lanes)
    Chart(ChartMeta("riff"), dict(cn.difficulties), lanes=lanes, beats=cn.beats)
    used = {d: {n.lane for n in cn.difficulties[d]} for d in DIFFICULTIES}
    assert max(used["expert"]) == lanes - 1 and min(used["expert"]) == 0
    assert max(used["easy"]) <= max(3, lanes - 2) - 1
    assert max(used["medium"]) <= max(3, lanes - 1) - 1


def test_bad_lane_count_is_refused(riff_120):
    for lanes in (3, 8):
        with pytest.raises(charting.ChartingError):
            charting.chart_notes(riff_120.y, riff_120.sr, lanes=lanes)


def test_lanes_follow_the_melody():
    times = np.arange(12) * 0.5
    pitches = np.array([40, 42, 44, 45, 47, 49, 49, 47, 45, 44, 42, 40])
    lanes = charting.assign_lanes(times, pitches, lanes=5)
    steps, moves = np.diff(pitches), np.diff(lanes)
    assert np.all(moves[steps == 0] == 0)                 # repeated pitch, same lane
    assert np.all(moves[steps > 0] >= 0) and np.all(moves[steps < 0] <= 0)
    assert lanes.min() == 0 and lanes.max() == 4          # the riff uses the whole neck
    # Strictly moves unless already at the edge.
    for step, move, prev in zip(steps, moves, lanes[:-1]):
        if step > 0 and prev < 4:
            assert move > 0
        if step < 0 and prev > 0:
            assert move < 0


def test_a_note_that_is_no_repeat_moves_even_when_its_pitch_estimate_does_not():
    times = np.arange(6) * 0.5
    pitches = np.full(6, 45)
    held = charting.assign_lanes(times, pitches, lanes=5)
    assert np.all(held == held[0])                         # unchanged pitch: a repeat
    repeats = np.array([False, True, False, False, True, False])
    lanes = charting.assign_lanes(times, pitches, lanes=5, repeats=repeats)
    moves = np.diff(lanes)
    assert np.all(moves[repeats[1:]] == 0) and np.all(moves[~repeats[1:]] != 0)
    with pytest.raises(charting.ChartingError):
        charting.assign_lanes(times, pitches, repeats=repeats[:3])


def test_one_note_played_again_and_again_stays_in_one_lane():
    sr = 22050
    times = np.cumsum(np.random.default_rng(3).uniform(0.3, 1.2, 24))
    y = render(times, np.full(times.size, 45), sr=sr, duration_s=times[-1] + 2.0)
    for notes in charting.chart_notes(y, sr).difficulties.values():
        assert len({n.lane for n in notes if n.pitch == 45}) <= 1


def test_lanes_follow_a_melody_the_dominant_pitch_misses():
    # A melody plucked over a louder low E struck with every note: the dominant pitch is the E
    # throughout, so only how each note sounds tells a repeated note from a new one.
    sr, n = 22050, 64
    times = 0.5 + np.arange(n) * 0.25
    melody = np.tile([64, 64, 69, 67, 67, 71, 64, 74], n // 8)
    y = (2 * render(times, np.full(n, 40), sr=sr, duration_s=18.0)
         + render(times, melody, sr=sr, duration_s=18.0, seed=1))
    expert = charting.chart_notes(y, sr).difficulties["expert"]
    assert {note.pitch for note in expert} <= {40, 47}    # the E (and a power chord's fifth)
    at = np.array([note.t for note in expert])
    starts = np.unique(at)
    played = np.round((starts - 0.5) / 0.25).astype(int)
    lanes = np.array([np.mean([n.lane for n in expert if n.t == t]) for t in starts])
    follows = np.diff(played) == 1
    assert follows.sum() >= 0.7 * n                       # (some clean re-plucks are dropped)
    step = np.sign(np.diff(melody[played]))[follows]
    move = np.sign(np.diff(lanes))[follows]
    assert np.all(move[step == 0] == 0)                   # a repeat stays in its lane
    new = step != 0
    assert np.mean(move[new] == step[new]) >= 0.6         # most new notes move the melody's way
    assert np.mean(move[new] == -step[new]) <= 0.05       # (none moved when lanes followed the
    # pitch estimate alone)


def test_lanes_are_filled_as_a_charter_fills_them():
    # A long wandering melody: most notes in the lower lanes, the top lane for the highest ones
    # (human Expert charts put 3-11 % of their notes on orange), and never a move against the
    # melody.
    rng = np.random.default_rng(0)
    times = np.arange(400) * 0.25
    pitches = 40 + np.cumsum(rng.choice([-3, -2, -1, 1, 2, 3], times.size))
    lanes = charting.assign_lanes(times, pitches, lanes=5)
    share = np.bincount(lanes, minlength=5) / lanes.size
    assert share[4] <= 0.12 and np.all(share[:4] >= 0.1)
    steps, moves = np.sign(np.diff(pitches)), np.sign(np.diff(lanes))
    assert not np.any(moves == -steps)


def test_lanes_are_relative_to_the_register_played():
    # The same riff an octave and a half higher sits in the same lanes.
    times = np.arange(16) * 0.25
    riff_pitches = np.array([40, 43, 45, 43, 40, 47, 45, 43] * 2)
    low = charting.assign_lanes(times, riff_pitches, lanes=5)
    high = charting.assign_lanes(times, riff_pitches + 19, lanes=5)
    np.testing.assert_array_equal(low, high)


def test_fast_notes_never_jump_more_than_two_lanes():
    times = np.arange(40) * 0.1                           # 10 notes a second
    pitches = np.tile([40, 60], 20)                       # leaps of 20 semitones
    lanes = charting.assign_lanes(times, pitches, lanes=7, fast_s=0.2)
    assert np.abs(np.diff(lanes)).max() <= 2


def test_sustains_chords_and_playability():
    # Whole-note power chords (long, loud, on the beat) between runs of short notes.
    sr = 22050
    beat = 0.5
    times, pitches, lengths = [], [], []
    for bar in range(6):
        start = 0.5 + bar * 4 * beat
        times.append(start), pitches.append(45), lengths.append(1.9)
        for k in range(8):
            times.append(start + 2 * beat + k * beat / 4), pitches.append(52 + (k % 3) * 2)
            lengths.append(0.12)
    y = np.zeros(int(14 * sr), np.float32)
    for t, p, length in zip(times, pitches, lengths):
        note = render([0.0], [p], sr=sr, duration_s=length + 0.01, note_s=length)
        note *= 3.0 if length > 1 else 1.0
        i = int(t * sr)
        y[i:i + note.size] += note
    cn = charting.chart_notes(y, sr)
    expert = cn.difficulties["expert"]
    long_notes = [n for n in expert if n.dur > 0]
    assert len(long_notes) >= 5                            # the whole notes ring: sustains
    for name in DIFFICULTIES:
        notes = cn.difficulties[name]
        starts = _onsets(notes)
        for n in notes:
            later = starts[starts > n.t]
            if n.dur > 0 and later.size:
                assert n.end < later[0]                    # a sustain ends before the next note
        by_time = {}
        for n in notes:
            by_time.setdefault(n.t, []).append(n.lane)
        for chord in by_time.values():
            assert len(chord) <= 2 and len(set(chord)) == len(chord)
            assert max(chord) - min(chord) <= 1            # chords in adjacent lanes: no stretch
    assert any(len(v) == 2 for v in [[n for n in expert if n.t == t] for t in _onsets(expert)])


def test_demucs_other_stem_is_charted_and_named():
    r = riff(bpm=128, bars=6, seed=5)
    noise = np.random.default_rng(0).standard_normal(r.y.size).astype(np.float32) * 0.05
    stems = Stems({"other": r.y, "drums": noise}, r.sr, "demucs")
    cn = charting.chart_notes(r.y + noise, r.sr, stems=stems)
    expert = cn.difficulties["expert"]
    assert {n.stem for n in expert} == {"other"}
    assert mir_eval.onset.f_measure(r.times, _onsets(expert), window=0.05)[0] >= 0.8
    # HPSS stems leave the mix charted (measured better; see analyzer.charting._charted_stem).
    hpss = Stems({"other": r.y, "drums": noise}, r.sr, "hpss")
    assert {n.stem for n in charting.chart_notes(r.y, r.sr, stems=hpss).difficulties["expert"]} \
        == {"mix"}


def _drums(times, size, sr, *, seed=0, decay=50.0):
    """Noise bursts (a snare-like hit, 80 ms, decaying at ``decay`` per second) at ``times``."""
    rng = np.random.default_rng(seed)
    drums = np.zeros(size)
    for hit in times:
        i, n = int(hit * sr), int(0.08 * sr)
        drums[i:i + n] += rng.standard_normal(n) * np.exp(-decay * np.arange(n) / sr)
    return drums.astype(np.float32)


def test_a_guitar_stem_keeps_the_drums_off_the_chart_while_the_mix_times_the_notes():
    # A riff for 8 bars, then 6 bars where only the drums play; a hit on every 8th throughout.
    r = riff(bpm=120, bars=14, seed=3)
    guitar = r.y.copy()
    guitar[int((r.t0 + 16.0) * r.sr):] *= 1e-3                       # the guitar rests
    played = r.times[r.times < r.t0 + 16.0]
    hits = r.t0 + 0.25 * np.arange(int(28 / 0.25))
    drums = 0.1 * _drums(hits, guitar.size, r.sr)
    mix = guitar + drums

    def charted(stems=None):
        expert = charting.chart_notes(mix, r.sr, stems=stems).difficulties["expert"]
        times = _onsets(expert)
        return expert, times[times < r.t0 + 16.2], times[times > r.t0 + 16.2]

    # The mix alone leaves the drums off where every pitched instrument rests, once its level
    # has fallen (notes.pitched_rests: averaged over 2 s), and charts some between the riff's
    # notes ...
    _, riff_alone, rest_alone = charted()
    assert rest_alone.size <= 4 and np.all(rest_alone < r.t0 + 17.5)
    # ... a guitar stem (the drums leaking in, as a separator leaves them) keeps them all off.
    stems = Stems({"drums": drums, "guitar": guitar + 0.2 * drums}, r.sr, "demucs")
    expert, riff_notes, rest_notes = charted(stems)
    assert {n.stem for n in expert} == {"guitar"}
    assert rest_notes.size == 0
    f, precision, _ = mir_eval.onset.f_measure(played, riff_notes, window=0.05)
    assert precision >= 0.95                                         # no drum hit in the riff
    assert f >= mir_eval.onset.f_measure(played, riff_alone, window=0.05)[0] - 0.02
    # The notes are timed by the mix's onsets.
    matched = mir_eval.util.match_events(played, riff_notes, 0.05)
    assert np.median(np.abs([riff_notes[j] - played[i] for i, j in matched])) <= 0.01


def test_a_drum_intro_is_not_charted_and_a_quiet_verse_is():
    # 4 bars of drums alone, then a riff over them whose first 4 bars are played 12 dB softer
    # (drums too): a charter has nothing to chart in the intro, and charts the verse.
    r = riff(bpm=120, bars=12, seed=7, t0=8.5)
    hits = 0.5 + 0.25 * np.arange(int((r.y.size / r.sr - 1.5) / 0.25))
    y = r.y + 0.1 * _drums(hits, r.y.size, r.sr)
    verse = slice(int(r.t0 * r.sr), int((r.t0 + 8.0) * r.sr))
    y[verse] *= 10 ** (-12 / 20)
    expert = _onsets(charting.chart_notes(y, r.sr).difficulties["expert"])
    assert np.sum(expert < r.t0 - 0.1) <= 2          # at most the intro's last second, if any
    # The verse is charted as the global threshold allows soft notes (about 60 % of them here).
    quiet = r.times[r.times < r.t0 + 8.0]
    found = expert[(expert > r.t0 - 0.1) & (expert < r.t0 + 8.0)]
    _, precision, recall = mir_eval.onset.f_measure(quiet, found, window=0.05)
    assert precision >= 0.95 and recall >= 0.5


def test_the_loudest_instrument_stem_is_charted_and_one_the_song_lacks_is_not():
    r = riff(bpm=128, bars=6, seed=5)
    drums = 0.1 * _drums(np.arange(r.t0, r.y.size / r.sr - 1, 60 / 128 / 2), r.y.size, r.sr)
    bleed = 0.01 * drums                                   # what a separator leaves of nothing
    piano_song = Stems({"drums": drums, "guitar": bleed, "piano": r.y}, r.sr, "demucs")
    notes = charting.chart_notes(r.y + drums, r.sr, stems=piano_song).difficulties["expert"]
    assert notes and {n.stem for n in notes} == {"piano"}
    # No instrument stem holds MIN_STEM_SHARE of the mix: the mix alone is charted, not the
    # bleed (which would leave the song without notes).
    drum_solo = Stems({"drums": drums, "guitar": bleed, "other": bleed}, r.sr, "demucs")
    notes = charting.chart_notes(drums, r.sr, stems=drum_solo).difficulties["expert"]
    assert len(notes) >= 20 and {n.stem for n in notes} == {"mix"}


def test_drum_hits_over_a_held_chord_are_not_charted_but_picked_notes_are():
    sr, seconds = 22050, 12.0
    t = np.arange(int(seconds * sr)) / sr
    chord = sum(np.sin(2 * np.pi * f0 * h * t) * 0.6 ** h for f0 in (110.0, 165.0)
                for h in range(1, 6))                                   # held all along
    picks = 0.5 + 0.5 * np.arange(22)                                   # a note on every beat
    pitches = np.array([57, 60, 64, 62, 59, 65, 67, 60] * 3)[:picks.size]
    hits = picks[:-1] + 0.25                                            # a drum on every "and"
    drum = _drums(hits, t.size, sr, seed=1, decay=60.0)
    y = (0.1 * chord + 0.02 * drum
         + render(picks, pitches, sr=sr, duration_s=seconds, note_s=0.45)).astype(np.float32)
    # On strength and metre alone the hits would be charted (8th-note weight 0.9) ...
    found = onset_analysis.detect_onsets(
        onset_analysis.onset_strength(onset_analysis.analysis_spectrogram(y, sr)), threshold=0.1)
    at_hits = [found.strength[np.argmin(np.abs(found.times - h))] for h in hits]
    assert min(at_hits) * charting.METRE_WEIGHTS[1] >= charting.ONSET_THRESHOLD
    # ... but they bring no new partials over the held chord, and the picked notes do.
    expert = _onsets(charting.chart_notes(y, sr).difficulties["expert"])
    assert len(mir_eval.util.match_events(picks, expert, 0.05)) >= picks.size - 1
    assert len(mir_eval.util.match_events(hits, expert, 0.05)) <= 2



def test_a_chord_struck_again_while_it_rings_is_charted_each_time():
    # A chord on every beat (100 BPM), the earlier strikes ringing on as under a sustain pedal,
    # the chord changing every two strikes. A strike sounds like the one before and its
    # partials were sounding already, as under a drum hit over a held chord; but it excites the
    # strings anew (its own phase, an attack noise), so its partials rise and it stays charted
    # (charting.HELD_OVER_RISE; weighing every such onset instead drops strikes here).
    sr, seconds, beat = 22050, 16.0, 0.6
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    strikes = np.arange(0.5, seconds - 1, beat)
    chords = [(57, 60, 64), (53, 57, 60), (55, 59, 62), (52, 55, 59)]
    y = np.zeros_like(t)
    for k, s in enumerate(strikes):
        after = t >= s
        tt = t[after] - s
        y[after] += np.exp(-1.0 * tt) * np.minimum(1.0, tt / 0.004) * sum(
            0.5 ** h * np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * h * tt + rng.uniform(0, 7))
            for p in chords[(k // 2) % 4] for h in range(1, 6))
        i, n = int(s * sr), int(0.02 * sr)
        y[i:i + n] += 0.5 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.004 * sr))
    y = (0.1 * y / np.abs(y).max()).astype(np.float32)
    expert = _onsets(charting.chart_notes(y, sr).difficulties["expert"])
    assert len(mir_eval.util.match_events(strikes, expert, 0.05)) >= strikes.size - 2


def test_quiet_notes_a_repeated_riff_does_not_repeat_are_not_charted():
    # One bar of 8 notes played 12 times (120 BPM); in bars 3-10 one quieter pluck (half as
    # loud) at a 16th the riff leaves free, a different one each bar: notes no repeat has (a
    # ghost note, a stray hit). Measured over 6 seeds: 6-8 of the 8 would be charted on their
    # own scores, 1-2 are; the riff loses at most 2 of its 96 notes either way.
    sr, slot, t0 = 22050, 0.125, 0.5
    bar = {0: 45, 3: 48, 4: 52, 6: 50, 8: 47, 10: 55, 12: 57, 14: 52}
    rng = np.random.default_rng(0)
    riff_times = np.array([t0 + (16 * b + k) * slot for b in range(12) for k in bar])
    free = [k for k in range(16) if k not in bar]
    ghosts = np.array([t0 + (16 * b + k) * slot
                       for b, k in zip(range(2, 10), rng.permutation(free))])
    seconds = t0 + 12 * 16 * slot + 1.5
    y = (render(riff_times, list(bar.values()) * 12, sr=sr, duration_s=seconds)
         + 0.5 * render(ghosts, rng.choice([59, 60, 62, 64], ghosts.size), sr=sr,
                        duration_s=seconds, seed=1)).astype(np.float32)
    # On strength, metre and new partials alone the ghosts would be charted ...
    spec = onset_analysis.analysis_spectrogram(y, sr)
    env = onset_analysis.onset_strength(spec)
    found = onset_analysis.detect_onsets(env, threshold=0.1)
    score = (found.strength
             * charting._metrical_weights(found.times, beat_analysis.track_beats(env).beats)
             * charting._tonal_factor(note_analysis.new_partials(
                 spec, np.round(found.times * onset_analysis.FRAME_RATE).astype(np.int64))))
    alone = found.times[score >= charting.ONSET_THRESHOLD]
    assert len(mir_eval.util.match_events(ghosts, alone, 0.05)) >= 6
    # ... but the bars that repeat theirs do not have them; the riff's notes stay.
    expert = _onsets(charting.chart_notes(y, sr).difficulties["expert"])
    assert len(mir_eval.util.match_events(ghosts, expert, 0.05)) <= 2
    assert len(mir_eval.util.match_events(riff_times, expert, 0.05)) >= riff_times.size - 2


def _on_beats(notes, beats, tol=0.03):
    """Distinct note times, and the fraction of them within ``tol`` of a beat."""
    times = _onsets(notes)
    return times.size, float(np.mean(np.min(np.abs(times[:, None] - beats[None]), axis=1) <= tol))


def test_a_slow_song_tracked_at_twice_its_tempo_is_thinned_at_its_own():
    # 90 BPM: a note on every beat, on half the 8ths between. The tracker (100-220 BPM) counts
    # 180, where these are quarter and 8th notes: thinned on that grid, Medium and Easy (gaps
    # of 0.75 and 1 beat) kept every Expert note (65 of them, 69 % on the beat). Counted at 90
    # they keep the beats (a few fewer than all 48: each level keeps at most the share of the
    # level above that human charts do, RULES' max_share).
    sr, beat, t0, n_beats = 22050, 60.0 / 90.0, 0.5, 48
    rng = np.random.default_rng(0)
    slots = [k for k in range(2 * n_beats) if k % 2 == 0 or rng.random() < 0.5]
    times = t0 + np.array(slots) * beat / 2
    y = render(times, rng.choice([45, 47, 48, 50, 52, 55, 57, 60], times.size), sr=sr,
               duration_s=t0 + n_beats * beat + 1.5)
    beats = t0 + np.arange(n_beats) * beat
    cn = charting.chart_notes(y, sr)
    assert cn.bpm == pytest.approx(180, abs=2)
    assert _on_beats(cn.difficulties["expert"], beats)[0] >= times.size - 4   # the 8ths too
    for name in ("medium", "easy"):
        count, on_beat = _on_beats(cn.difficulties[name], beats)
        assert 0.85 * n_beats <= count <= n_beats and on_beat >= 0.95


@pytest.mark.parametrize("bpm, seed", [(140, 2), (160, 3)])
def test_a_brickwalled_master_is_read_per_band(bpm, seed, monkeypatch):
    # Pushed 8 dB into a brickwall limiter, the riff's crest factor is under
    # BRICKWALL_CREST_DB, and its onsets are read per mel band: Expert finds the notes
    # (F 0.88-0.93) better than when the limited riff is read like a mix (0.80-0.83).
    song = riff(bpm=bpm, seed=seed)
    loud = brickwall(song.y, song.sr, gain_db=8)

    def f_measure():
        found = _onsets(charting.chart_notes(loud, song.sr).difficulties["expert"])
        return mir_eval.onset.f_measure(song.times, found)[0]

    per_band = f_measure()
    monkeypatch.setattr(charting, "BRICKWALL_CREST_DB", 0.0)
    assert per_band >= max(0.85, f_measure() + 0.03)


def test_every_level_is_easier_than_the_one_above_even_where_the_music_moves_in_8ths():
    # Steady 8ths at 120 BPM: Hard's shortest gap (an 8th) would keep all of Expert, and Easy's
    # (a beat) all of Medium (the beats). Each level keeps at most the share of the level above
    # that human charts keep, its strongest notes by the thinning score.
    sr, beat, t0 = 22050, 0.5, 0.5
    rng = np.random.default_rng(3)
    times = t0 + np.arange(128) * beat / 2
    y = render(times, rng.choice([45, 48, 50, 52, 55, 57], times.size), sr=sr,
               duration_s=times[-1] + 1.5)
    cn = charting.chart_notes(y, sr)
    counts = {name: _onsets(cn.difficulties[name]).size for name in DIFFICULTIES}
    assert counts["expert"] >= 0.85 * times.size
    for easier, harder in zip(DIFFICULTIES, DIFFICULTIES[1:]):
        assert counts[easier] <= charting.RULES[easier].max_share * counts[harder], counts
    # Where the gaps alone would keep every note of the level above, the share decides.
    for easier, harder in (("hard", "expert"), ("easy", "medium")):
        assert counts[easier] == int(charting.RULES[easier].max_share * counts[harder]), counts


def test_expert_of_a_song_counted_at_half_time_has_no_32nds():
    # 90 BPM, tracked at 180: a note on every beat, on some 8ths, and on some beats a grace
    # note a 32nd later (83 ms). Expert's shortest gap is a 16th of the beat a charter counts,
    # 90 BPM: the grace notes go, the beats stay. At the tracked 180 BPM's 16th (83 ms) they
    # were all charted.
    sr, beat, t0, n_beats = 22050, 60.0 / 90.0, 0.5, 48
    rng = np.random.default_rng(1)
    beats = t0 + np.arange(n_beats) * beat
    eighths = beats[rng.random(n_beats) < 0.4] + beat / 2
    graces = beats[::4] + beat / 8
    times = np.sort(np.r_[beats, eighths, graces])
    y = render(times, rng.choice([45, 48, 50, 52, 55, 57], times.size), sr=sr,
               duration_s=t0 + n_beats * beat + 1.5)
    expert = charting.chart_notes(y, sr).difficulties["expert"]
    assert np.diff(_onsets(expert)).min() > 0.15
    assert _on_beats(expert, beats)[0] >= n_beats - 3


@pytest.mark.parametrize("seed", [0, 4])
def test_easy_levels_keep_the_beat_when_the_tracker_takes_the_and(seed):
    # 140 BPM 8ths: a new pitch on each beat, the same pitch picked again twice as loud on the
    # "and". The tracker follows the loud "and"s; thinned on its beats, Medium would keep 53 /
    # 73 % of its notes on the beat (seeds 0 / 4). The beats are where the new pitches come.
    sr, beat, t0, n_beats = 22050, 60.0 / 140.0, 0.5, 48
    rng = np.random.default_rng(seed)
    pitches = rng.choice([45, 47, 48, 50, 52, 53, 55, 57, 59, 60], n_beats)
    beats = t0 + np.arange(n_beats) * beat
    seconds = t0 + n_beats * beat + 1.5
    y = (render(beats, pitches, sr=sr, duration_s=seconds, seed=seed)
         + 2.0 * render(beats + beat / 2, pitches, sr=sr, duration_s=seconds, seed=seed + 1))
    cn = charting.chart_notes(y.astype(np.float32), sr)
    assert np.min(np.abs(cn.beats[:, None] - beats[None]), axis=1).min() > 0.1  # on the "and"
    count, on_beat = _on_beats(cn.difficulties["medium"], beats)
    assert count >= 0.7 * n_beats and on_beat >= 0.9


def test_counting_beats_follows_new_pitches_and_halves_a_sparse_chart():
    tm = beat_analysis.TempoMap(120.0, np.arange(64) * 0.5)
    # Notes on the "and" of beats 0-31, on the beat from 32 on: the counted beat follows them.
    times = np.concatenate([np.arange(32) * 0.5 + 0.25, 16.0 + np.arange(32) * 0.5])
    beats = charting.counting_beats(tm, times, np.full(64, 0.5), n_expert=128)
    assert beats.size == 64
    np.testing.assert_allclose(beats[:24], np.arange(24) * 0.5 + 0.25)
    np.testing.assert_allclose(beats[40:], 20.0 + np.arange(24) * 0.5)
    # Fewer than 1.2 Expert notes per tracked beat (180 BPM): every other tracked beat, the odd
    # ones, where the notes with new partials are (the even ones bring none).
    fast = beat_analysis.TempoMap(180.0, np.arange(64) / 3)
    times = np.arange(64) / 3
    share = np.where(np.arange(64) % 2 == 1, 0.8, 0.0)
    beats = charting.counting_beats(fast, times, share, n_expert=64)
    np.testing.assert_allclose(beats, (2 * np.arange(32) + 1) / 3)
    # ... unless the half tempo would be under MIN_COUNTING_BPM (150 BPM: 75).
    slow = beat_analysis.TempoMap(150.0, np.arange(64) * 0.4)
    np.testing.assert_allclose(np.diff(charting.counting_beats(slow, times * 1.2, share,
                                                               n_expert=64)), 0.4)


@pytest.mark.parametrize("first, second", [(110, 150), (150, 110)])
def test_a_song_that_changes_tempo_is_charted_at_each_tempo(first, second):
    song = tempo_change(first, second)
    cn = charting.chart_notes(song.y, song.sr)
    truth = song.beats[song.beats <= song.times[-1]]
    assert mir_eval.beat.f_measure(truth, cn.beats) >= 0.95
    for name, rule in charting.RULES.items():
        found = _onsets(cn.difficulties[name])
        for part, bpm in ((found < song.change_s, first), (found >= song.change_s, second)):
            # Each level's shortest gap is in the beats of its own section (an Easy note a
            # quarter apart at 110 BPM, 0.55 s, is no closer than 0.8 of it).
            gaps = np.diff(found[part]) / (60.0 / bpm)
            assert gaps.min() >= rule.min_gap_beats * (1 - charting.GAP_SLACK) - 0.02, name
    expert = _onsets(cn.difficulties["expert"])
    for part in (song.times < song.change_s, song.times >= song.change_s):
        near = (expert >= song.times[part][0] - 0.05) & (expert <= song.times[part][-1] + 0.05)
        assert mir_eval.onset.f_measure(song.times[part], expert[near])[0] >= 0.75


@pytest.mark.parametrize("bpm", [100, 130, 160])
def test_a_shuffle_keeps_its_swung_notes_down_to_hard(bpm):
    # Swung 8ths are a third of a beat before the next beat: in straight time that is closer
    # than Hard's 8th, and off the 8th-note grid the metrical weight favours. Thinned as
    # straight 8ths, Hard would keep the beats alone (recall 0.5); it keeps at most
    # RULES["hard"].max_share of Expert.
    song = shuffle(bpm=bpm, seed=bpm)
    cn = charting.chart_notes(song.y, song.sr)
    for name, least in (("expert", 0.8), ("hard", 0.65)):
        found = _onsets(cn.difficulties[name])
        recall = mir_eval.onset.f_measure(song.times, found)[2]
        assert recall >= least, name
    # Medium keeps the beats: its gap is a quarter-note triplet.
    medium = _onsets(cn.difficulties["medium"])
    assert np.diff(medium).min() >= (2 / 3) * (60 / bpm) * (1 - charting.GAP_SLACK) - 0.02


def test_silence_gives_empty_difficulties():
    cn = charting.chart_notes(np.zeros(22050 * 12, np.float32), 22050)
    assert all(len(v) == 0 for v in cn.difficulties.values())
    assert cn.beats.size == 0


@pytest.mark.parametrize("seconds", [12, 60])
def test_noise_is_charted_empty_like_silence(seconds):
    # Stationary white noise has no beat and no peaks that stand out: its envelope's random peaks
    # are not notes (they gave ~9 notes/s before the check).
    y = np.random.default_rng(1).standard_normal(22050 * seconds).astype(np.float32) * 0.1
    cn = charting.chart_notes(y, 22050)
    assert all(len(v) == 0 for v in cn.difficulties.values()) and cn.beats.size == 0
    Chart(ChartMeta("noise"), dict(cn.difficulties), lanes=5, beats=cn.beats)


@pytest.mark.parametrize("tone", ["sine", "harmonics", "hum", "sine over hiss"])
def test_a_steady_tone_is_charted_empty(tone):
    # A tone that never changes has no onsets. Its flux is rounding noise and the STFT's ripple
    # between its partials; scaled up to a loud onset (and read per band, as its 3-9 dB crest
    # factor asks) that was 4-6 notes/s of nothing.
    sr = 44100
    t = np.arange(30 * sr) / sr
    hiss = np.random.default_rng(0).standard_normal(t.size)
    y = {"sine": np.round(4096 * np.sin(2 * np.pi * 440 * t)) / 32768,    # 16-bit, as a file
         "harmonics": sum(0.1 * np.sin(2 * np.pi * 130.8 * h * t) for h in range(1, 7)),
         "hum": 0.2 * np.sin(2 * np.pi * 60 * t) + 1e-3 * hiss,
         "sine over hiss": 0.3 * np.sin(2 * np.pi * 440 * t) + 3e-3 * hiss,   # 40 dB down
         }[tone].astype(np.float32)
    cn = charting.chart_notes(y, sr)
    assert all(len(v) == 0 for v in cn.difficulties.values()) and cn.beats.size == 0


def _breathy_melody(seconds, sr, seed):
    """Tones of filtered noise (harmonics 2 % wide, like a breathy flute or a bowed pad), a new
    pitch every 0.5-1.3 s at random: the change times and the signal."""
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(8192, 1 / sr)
    y, changes, t = np.zeros(int(seconds * sr)), [], 0.0
    while t < seconds:
        n = int(rng.uniform(0.5, 1.3) * sr)
        f0 = 440 * 2 ** ((rng.choice([45, 48, 50, 52, 55, 57, 60, 62, 64]) - 69) / 12)
        gain = sum(0.8 ** h * np.exp(-0.5 * ((freqs - h * f0) / (0.02 * h * f0)) ** 2)
                   for h in range(1, 12))
        tone = np.concatenate([np.fft.irfft(np.fft.rfft(rng.standard_normal(8192)) * gain)
                               for _ in range(n // 8192 + 1)])[:n]
        fade = np.minimum(1.0, np.minimum(np.arange(n), n - 1 - np.arange(n)) / (0.03 * sr))
        i = int(t * sr)
        y[i:i + n] += (tone * fade)[:max(0, y.size - i)]
        changes.append(t)
        t += n / sr
    return np.array(changes[1:]), (0.1 * y / y.std()).astype(np.float32)


def test_a_melody_half_buried_in_hiss_is_charted_though_it_has_no_beat():
    # No beat and no onset that stands out of the hiss's flux: by those two alone it is noise,
    # as a dense distorted guitar track on its own was (see charting.MIN_SPECTRAL_CHANGE_DB).
    sr = 22050
    changes, melody = _breathy_melody(20, sr, seed=0)
    y = melody + 0.1 * np.random.default_rng(9).standard_normal(melody.size).astype(np.float32)
    spec = onset_analysis.analysis_spectrogram(y, sr)
    env = onset_analysis.onset_strength(spec)
    assert beat_analysis.pulse_clarity(env) < charting.MIN_PULSE_CLARITY
    assert onset_analysis.envelope_contrast(env) < charting.MIN_CONTRAST
    # ... but its sound keeps changing, and the changes are charted.
    expert = _onsets(charting.chart_notes(y, sr).difficulties["expert"])
    assert len(mir_eval.util.match_events(changes, expert, 0.05)) >= 0.5 * changes.size


def test_music_under_loud_noise_is_still_charted():
    r = riff(bpm=120, bars=8, seed=7)
    noise = np.random.default_rng(2).standard_normal(r.y.size).astype(np.float32)
    y = r.y + noise * np.sqrt(np.mean(r.y ** 2) / np.mean(noise ** 2)) * 0.5   # 6 dB SNR
    expert = _onsets(charting.chart_notes(y, r.sr).difficulties["expert"])
    assert mir_eval.onset.f_measure(r.times, expert, window=0.05)[0] >= 0.8

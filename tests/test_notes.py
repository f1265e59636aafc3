"""analyzer.notes on synthetic recordings with exact answers: pitches, how onsets sound,
new partials, repeats, note lengths, where the pitched part rests, and basic-pitch's real ONNX
model."""
import importlib.util

import numpy as np
import pytest

from analyzer.notes import (PitchedNote, new_partials, onset_intervals, onset_pitches,
                            onset_similarity, onset_spectra, pitched_rests, repeat_consensus,
                            ring_durations, transcribe)
from analyzer.onsets import (ANALYSIS_SR, FRAME_RATE, N_FFT, NotesError, Spectrogram,
                             analysis_spectrogram, detect_onsets, onset_strength)
from tests.plucked import render, riff


def test_pitches_at_onsets_are_the_played_notes():
    r = riff(seed=7)
    spec = analysis_spectrogram(r.y, r.sr)
    pitches, salience = onset_pitches(spec, r.times)
    assert np.mean(pitches == r.pitches) >= 0.95
    assert np.all(salience > 0)


def test_onset_similarity_tells_a_repeated_note_from_a_new_one():
    sr = 22050
    times = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    y = render(times, [45, 45, 45, 50, 45], sr=sr, duration_s=3.5)
    n = int(0.1 * sr)
    hit = np.random.default_rng(1).standard_normal(n) * np.exp(-np.arange(n) / (0.02 * sr))
    y[int(1.5 * sr):int(1.5 * sr) + n] += 0.1 * hit       # a drum over the third A
    spec = analysis_spectrogram(y, sr)
    sim = onset_similarity(onset_spectra(spec, times))
    assert sim[0] == 0.0                                  # nothing before the first
    assert sim[1] > 0.95 and sim[2] > 0.6                 # the same note, then under a drum
    assert sim[3] < 0.4 and sim[4] < 0.4                  # a new note, and back
    none, one = onset_spectra(spec, np.zeros(0)), onset_spectra(spec, np.array([1.0]))
    assert onset_similarity(none).shape == (0,)
    assert np.array_equal(onset_similarity(one), [0.0])


def test_onset_intervals_follow_a_riff_played_over_a_drone():
    # Power chords (root and fifth) over a louder low E: the dominant pitch stays the E, the
    # partials of the chords move by the intervals played.
    sr = 22050
    roots = np.array([52, 57, 55, 55, 60, 54, 59, 64])   # leaps within ±7 semitones
    times = 0.5 + np.arange(roots.size) * 0.4
    y = (2 * render(times, np.full(roots.size, 40), sr=sr, duration_s=4.0)
         + render(times, roots, sr=sr, duration_s=4.0, seed=1)
         + render(times, roots + 7, sr=sr, duration_s=4.0, seed=2))
    spec = analysis_spectrogram(y, sr)
    assert set(onset_pitches(spec, times)[0]) == {40}
    intervals = onset_intervals(onset_spectra(spec, times))
    np.testing.assert_array_equal(intervals, np.r_[0, np.diff(roots)])
    silence = analysis_spectrogram(np.zeros(sr, np.float32), sr)
    quiet = onset_spectra(silence, np.array([0.2, 0.5]))
    np.testing.assert_array_equal(onset_intervals(quiet), [0, 0])
    assert onset_intervals(onset_spectra(spec, np.zeros(0))).shape == (0,)


@pytest.mark.parametrize("midi", [40, 52, 64, 76])
def test_pitch_over_the_guitar_range(midi):
    sr = 22050
    y = render([0.2], [midi], sr=sr, duration_s=1.0, note_s=0.6)
    pitches, _ = onset_pitches(analysis_spectrogram(y, sr), np.array([0.2]))
    assert pitches[0] == midi


def test_ring_durations_follow_the_sound():
    sr = 22050
    y = np.zeros(4 * sr, np.float32)
    t = np.arange(int(1.5 * sr)) / sr
    y[int(0.5 * sr):int(0.5 * sr) + t.size] = 0.3 * np.sin(2 * np.pi * 220 * t)  # A3, 1.5 s
    short = render([0.5], [64], sr=sr, duration_s=1.0, note_s=0.15)               # E4, 0.15 s
    y[int(2.0 * sr):int(3.0 * sr)] += short                                        # at 2.5 s
    spec = analysis_spectrogram(y, sr)
    rings = ring_durations(spec, np.array([0.5, 2.5]), np.array([57, 64]))
    assert rings[0] == pytest.approx(1.5, abs=0.08)
    assert rings[1] < 0.3


def test_new_partials_tell_a_new_note_from_a_drum_hit_over_a_held_chord():
    sr = ANALYSIS_SR
    t = np.arange(6 * sr) / sr
    # An A2 power chord held for 6 s; at 2 s a drum-like noise burst hits over it, at 4 s a
    # C4 note is picked over it. Both onsets are clearly detected.
    chord = sum(np.sin(2 * np.pi * f0 * h * t) * 0.6 ** h for f0 in (110.0, 165.0)
                for h in range(1, 6))
    burst = np.random.default_rng(0).standard_normal(t.size) * np.exp(-40 * np.maximum(t - 2, 0))
    burst[t < 2] = 0.0
    picked = render([4.0], [60], sr=sr, duration_s=6.0, note_s=1.5)
    y = (0.2 * chord + 0.3 * burst + picked).astype(np.float32)
    spec = analysis_spectrogram(y, sr)
    found = detect_onsets(onset_strength(spec))
    for onset_s in (2.0, 4.0):
        assert np.min(np.abs(found.times - onset_s)) < 0.03
    frames = np.round(np.array([2.0, 4.0]) * FRAME_RATE).astype(np.int64)
    drum, note = new_partials(spec, frames)
    assert drum < 0.2 and note > 0.4
    assert new_partials(spec, np.zeros(0, np.int64)).shape == (0,)


def test_repeat_consensus_lowers_what_the_repeats_lack_and_nothing_else():
    # 32 beats of a riff repeated every bar (strong onsets on beats and "and"s), plus one weak
    # stray 16th in bar 2 that no other bar has; a flat spectrogram makes every bar sound alike.
    beats = np.arange(33) * 0.5
    riff_times = np.sort(np.r_[beats[:-1], beats[:-1] + 0.25])
    times = np.sort(np.r_[riff_times, 4.625])
    score = np.where(np.isin(times, riff_times), 0.8, 0.45)
    spec = Spectrogram(np.ones((N_FFT // 2 + 1, int(17 * FRAME_RATE)),
                                     np.float32))
    out = repeat_consensus(spec, times, score, beats)
    assert np.all(out <= score)
    np.testing.assert_array_equal(out[score == 0.8], 0.8)   # the riff's onsets recur: kept
    assert out[times == 4.625][0] < 0.35 < 0.45              # the stray falls under threshold
    # Strong onsets at random 16ths, no bar like another: the bars do not repeat, nothing changes.
    rng = np.random.default_rng(0)
    random_times = np.sort(rng.choice(np.arange(128), 48, replace=False) * 0.125)
    random_score = rng.uniform(0.4, 1.0, random_times.size)
    np.testing.assert_array_equal(
        repeat_consensus(spec, random_times, random_score, beats), random_score)
    # Too short to have repeats, or no onsets: unchanged.
    np.testing.assert_array_equal(repeat_consensus(spec, times, score, beats[:8]), score)
    assert repeat_consensus(spec, np.zeros(0), np.zeros(0), beats).shape == (0,)
    with pytest.raises(NotesError):
        repeat_consensus(spec, times, score[:-1], beats)


def test_basic_pitch_onnx_transcribes_a_melody():
    if importlib.util.find_spec("basic_pitch") is None:
        pytest.skip("basic-pitch is not installed")
    sr = 22050
    times, pitches = [0.3, 0.8, 1.3, 1.8, 2.3], [60, 64, 67, 72, 67]
    y = render(times, pitches, sr=sr, duration_s=3.0, note_s=0.45)
    found = transcribe(y, sr)
    assert all(isinstance(n, PitchedNote) for n in found)
    # The confident notes are exactly the played ones (weaker octave ghosts may come with them).
    strong = [n for n in found if n.amplitude >= 0.5]
    assert [n.pitch for n in strong] == pitches
    np.testing.assert_allclose([n.t for n in strong], times, atol=0.03)
    np.testing.assert_allclose([n.dur for n in strong], 0.45, atol=0.06)


def _pitched_rests_of(parts, sr=22050):
    """notes.pitched_rests of the sum of ``parts`` ((signal, from_s, to_s) each), per second."""
    y = sum(np.where((t >= a) & (t < b), x, 0.0) for x, a, b in parts
            for t in [np.arange(x.size) / sr]).astype(np.float32)
    rests = pitched_rests(analysis_spectrogram(y, sr))
    per_second = int(round(FRAME_RATE))
    return rests[:rests.size // per_second * per_second].reshape(-1, per_second).mean(axis=1)


def test_pitched_rests_are_where_only_the_drums_play():
    sr, seconds = 22050, 24
    t = np.arange(seconds * sr) / sr
    hits = (np.random.default_rng(0).standard_normal(t.size) * np.exp(-40 * (t % 0.5)))
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 330.0)) * 0.2 * (
        1 + 0.5 * np.sin(2 * np.pi * 2 * t))                           # strummed twice a second
    # Drums alone for 6 s, then drums and chords: the intro rests, once a second of it is in.
    rests = _pitched_rests_of([(hits, 0, seconds), (chord, 6, seconds)], sr)
    assert rests[1:5].min() == 1.0 and rests[7:].max() == 0.0
    # A verse where everything is 12 dB softer does not rest: its pitched share holds.
    soft = 10 ** (-12 / 20)
    rests = _pitched_rests_of([(hits * soft, 0, 8), (chord * soft, 0, 8), (hits, 8, seconds),
                               (chord, 8, seconds)], sr)
    assert rests.max() == 0.0
    # Nor does a passage where the drums drop out.
    rests = _pitched_rests_of([(chord, 0, seconds), (hits, 0, 8), (hits, 16, seconds)], sr)
    assert rests.max() == 0.0
    # Drums alone, hits on 120 random 8ths over a -70 dB floor: the mask's leakage comes and goes
    # with them (12 % of the frames would rest), but there is no pitched part to rest.
    rng = np.random.default_rng(1)
    drums = np.zeros(t.size)
    for hit in np.sort(0.5 + rng.choice(np.arange(0, seconds - 2, 0.125), 120, replace=False)):
        i, n = int(hit * sr), int(0.08 * sr)
        drums[i:i + n] += rng.standard_normal(n) * np.exp(-50 * np.arange(n) / sr)
    rests = _pitched_rests_of([(0.3 * drums + 1e-3 * rng.standard_normal(t.size), 0, seconds)],
                              sr)
    assert rests.max() == 0.0
    # A break where the chords stop and the drums play on rests.
    rests = _pitched_rests_of([(hits, 0, seconds), (chord, 0, 12), (chord, 18, seconds)], sr)
    assert rests[13:17].min() == 1.0 and rests[:11].max() == 0.0

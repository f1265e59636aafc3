"""analyzer.notes on synthetic recordings with exact answers: onsets, pitches, tempo, beats,
note lengths, and basic-pitch's real ONNX model."""
import importlib.util

import mir_eval
import numpy as np
import pytest

from analyzer import notes
from tests.plucked import render, riff, shuffle, tempo_change, tempo_ramp


def _f(reference, estimate, window=0.05):
    return mir_eval.onset.f_measure(np.asarray(reference), np.asarray(estimate), window=window)[0]


@pytest.mark.parametrize("bpm", [100, 128, 175])
def test_onsets_of_a_riff_are_found_on_time(bpm):
    r = riff(bpm=bpm, seed=bpm)
    env = notes.onset_strength(notes.analysis_spectrogram(r.y, r.sr))
    found = notes.detect_onsets(env)
    assert _f(r.times, found.times) >= 0.9
    matched = mir_eval.util.match_events(r.times, found.times, 0.05)
    errors = np.array([found.times[j] - r.times[i] for i, j in matched])
    assert abs(np.median(errors)) < 0.012  # no bias beyond a frame
    assert np.all(found.strength > 0)


def test_onsets_do_not_depend_on_the_sample_rate():
    low = riff(sr=22050, seed=3)
    high = riff(sr=44100, seed=3)
    def onsets(y, sr):
        return notes.detect_onsets(notes.onset_strength(notes.analysis_spectrogram(y, sr))).times

    t_low, t_high = onsets(low.y, 22050), onsets(high.y, 44100)
    assert _f(t_low, t_high, window=0.015) >= 0.97


def test_silence_and_steady_tone_have_no_onsets_past_the_first():
    sr = 22050
    silence = np.zeros(5 * sr, np.float32)
    env = notes.onset_strength(notes.analysis_spectrogram(silence, sr))
    assert len(notes.detect_onsets(env)) == 0
    t = np.arange(5 * sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    tone[:sr] = 0.0   # one onset at 1 s, then 4 s of an unchanging tone
    found = notes.detect_onsets(notes.onset_strength(notes.analysis_spectrogram(tone, sr)))
    assert len(found) == 1 and abs(found.times[0] - 1.0) < 0.03


def test_pitches_at_onsets_are_the_played_notes():
    r = riff(seed=7)
    spec = notes.analysis_spectrogram(r.y, r.sr)
    pitches, salience = notes.onset_pitches(spec, r.times)
    assert np.mean(pitches == r.pitches) >= 0.95
    assert np.all(salience > 0)


def test_onset_similarity_tells_a_repeated_note_from_a_new_one():
    sr = 22050
    times = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    y = render(times, [45, 45, 45, 50, 45], sr=sr, duration_s=3.5)
    n = int(0.1 * sr)
    hit = np.random.default_rng(1).standard_normal(n) * np.exp(-np.arange(n) / (0.02 * sr))
    y[int(1.5 * sr):int(1.5 * sr) + n] += 0.1 * hit       # a drum over the third A
    spec = notes.analysis_spectrogram(y, sr)
    sim = notes.onset_similarity(notes.onset_spectra(spec, times))
    assert sim[0] == 0.0                                  # nothing before the first
    assert sim[1] > 0.95 and sim[2] > 0.6                 # the same note, then under a drum
    assert sim[3] < 0.4 and sim[4] < 0.4                  # a new note, and back
    none, one = notes.onset_spectra(spec, np.zeros(0)), notes.onset_spectra(spec, np.array([1.0]))
    assert notes.onset_similarity(none).shape == (0,)
    assert np.array_equal(notes.onset_similarity(one), [0.0])


def test_onset_intervals_follow_a_riff_played_over_a_drone():
    # Power chords (root and fifth) over a louder low E: the dominant pitch stays the E, the
    # partials of the chords move by the intervals played.
    sr = 22050
    roots = np.array([52, 57, 55, 55, 60, 54, 59, 64])   # leaps within ±7 semitones
    times = 0.5 + np.arange(roots.size) * 0.4
    y = (2 * render(times, np.full(roots.size, 40), sr=sr, duration_s=4.0)
         + render(times, roots, sr=sr, duration_s=4.0, seed=1)
         + render(times, roots + 7, sr=sr, duration_s=4.0, seed=2))
    spec = notes.analysis_spectrogram(y, sr)
    assert set(notes.onset_pitches(spec, times)[0]) == {40}
    intervals = notes.onset_intervals(notes.onset_spectra(spec, times))
    np.testing.assert_array_equal(intervals, np.r_[0, np.diff(roots)])
    silence = notes.analysis_spectrogram(np.zeros(sr, np.float32), sr)
    quiet = notes.onset_spectra(silence, np.array([0.2, 0.5]))
    np.testing.assert_array_equal(notes.onset_intervals(quiet), [0, 0])
    assert notes.onset_intervals(notes.onset_spectra(spec, np.zeros(0))).shape == (0,)


@pytest.mark.parametrize("midi", [40, 52, 64, 76])
def test_pitch_over_the_guitar_range(midi):
    sr = 22050
    y = render([0.2], [midi], sr=sr, duration_s=1.0, note_s=0.6)
    pitches, _ = notes.onset_pitches(notes.analysis_spectrogram(y, sr), np.array([0.2]))
    assert pitches[0] == midi


@pytest.mark.parametrize("bpm", [104, 132, 160, 190])
def test_tempo_and_beats_of_a_steady_riff(bpm):
    r = riff(bpm=bpm, bars=10, seed=bpm)
    env = notes.onset_strength(notes.analysis_spectrogram(r.y, r.sr))
    tempo = notes.track_beats(env)
    assert tempo.bpm == pytest.approx(bpm, rel=0.02)
    truth = r.beats[r.beats <= r.times[-1]]
    assert _f(truth, tempo.beats, window=0.03) >= 0.9


@pytest.mark.parametrize("first, second", [(110, 150), (140, 105)])
def test_the_tempo_and_the_beats_follow_a_change_of_tempo(first, second):
    song = tempo_change(first, second)
    env = notes.onset_strength(notes.analysis_spectrogram(song.y, song.sr))
    tempo = notes.local_tempo(env)
    frame = lambda t: int(t * notes.FRAME_RATE)
    assert tempo[frame(song.change_s / 2)] == pytest.approx(first, rel=0.01)
    assert tempo[frame((song.change_s + song.times[-1]) / 2)] == pytest.approx(second, rel=0.01)
    # The change is found within a window or two of where it is.
    changed = np.flatnonzero(np.abs(np.diff(tempo)) > 1)
    assert changed.size == 1 and abs(changed[0] / notes.FRAME_RATE - song.change_s) <= 2.5
    truth = song.beats[song.beats <= song.times[-1]]
    assert _f(truth, notes.track_beats(env).beats, window=0.03) >= 0.9


def test_the_beats_follow_a_tempo_that_speeds_up_steadily():
    # 100 -> 160 BPM over 160 beats: at one tempo the beat tracker loses it (beat F 0.63-0.67).
    song = tempo_ramp(100, 160)
    env = notes.onset_strength(notes.analysis_spectrogram(song.y, song.sr))
    assert mir_eval.beat.f_measure(song.beats, notes.track_beats(env).beats) >= 0.95


def test_a_syncopated_figure_is_no_change_of_tempo():
    # 3+3+2 16ths over two beats at 140 BPM for 16 beats (it repeats every 2.67 8ths, not at a
    # slower tempo), then a riff on the beat: one tempo throughout.
    sixteenth = 60.0 / 140 / 4
    figure = 0.5 + np.concatenate([k * 8 * sixteenth + np.array([0, 3, 6]) * sixteenth
                                   for k in range(8)])
    rest = riff(bpm=140, bars=8, seed=3, t0=figure[-1] + 2 * sixteenth)
    times = np.concatenate([figure, rest.times])
    y = render(times, np.full(times.size, 45), sr=22050, duration_s=rest.y.size / 22050)
    env = notes.onset_strength(notes.analysis_spectrogram(y, 22050))
    tempo = notes.local_tempo(env)
    assert np.all(np.abs(tempo / 140 - 1) < 0.01)


def test_triplet_feel_is_found_where_the_music_swings_and_only_there():
    straight = riff(bpm=130, bars=8, seed=4, fill=0.5)
    swung = shuffle(bpm=130, bars=8, seed=5, t0=straight.t0 + 8 * 4 * 60 / 130)
    times = np.concatenate([straight.times, swung.times])
    y = render(times, np.concatenate([straight.pitches, swung.pitches]), sr=22050,
               duration_s=swung.y.size / 22050)
    env = notes.onset_strength(notes.analysis_spectrogram(y, 22050))
    found = notes.detect_onsets(env, threshold=0.1)
    beats = notes.track_beats(env).beats
    feel = notes.triplet_feel(found.times, found.strength, beats)
    change = swung.t0
    # Away from the change (the window reaches 4 beats either side), each half is what it is.
    far = np.abs(beats - change) > 5 * 60 / 130
    assert not feel[far & (beats < change)].any()
    assert feel[far & (beats > change) & (beats < swung.times[-1])].all()


def test_slow_songs_are_counted_in_double_time():
    # 75 BPM is below the charting range (100-220): its 8th notes are the charting beat.
    r = riff(bpm=75, bars=6, seed=1)
    env = notes.onset_strength(notes.analysis_spectrogram(r.y, r.sr))
    assert notes.estimate_tempo(env) == pytest.approx(150, rel=0.02)


def test_ring_durations_follow_the_sound():
    sr = 22050
    y = np.zeros(4 * sr, np.float32)
    t = np.arange(int(1.5 * sr)) / sr
    y[int(0.5 * sr):int(0.5 * sr) + t.size] = 0.3 * np.sin(2 * np.pi * 220 * t)  # A3, 1.5 s
    short = render([0.5], [64], sr=sr, duration_s=1.0, note_s=0.15)               # E4, 0.15 s
    y[int(2.0 * sr):int(3.0 * sr)] += short                                        # at 2.5 s
    spec = notes.analysis_spectrogram(y, sr)
    rings = notes.ring_durations(spec, np.array([0.5, 2.5]), np.array([57, 64]))
    assert rings[0] == pytest.approx(1.5, abs=0.08)
    assert rings[1] < 0.3


def _noise(kind: str, seconds: float, sr: int, seed: int) -> np.ndarray:
    """Stationary noise: white, pink (1/f power) or brown (1/f^2)."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(int(seconds * sr)))
    f = np.maximum(np.arange(spectrum.size), 1.0)
    power = {"white": 0.0, "pink": 0.5, "brown": 1.0}[kind]
    y = np.fft.irfft(spectrum / f ** power, int(seconds * sr))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
def test_noise_has_no_pulse_and_no_contrast_but_music_has(kind):
    sr = notes.ANALYSIS_SR
    noise = notes.onset_strength(notes.analysis_spectrogram(_noise(kind, 12, sr, seed=3), sr))
    assert notes.pulse_clarity(noise) < 0.15 and notes.envelope_contrast(noise) < 2.3
    r = riff(bpm=140, bars=8, seed=4)
    music = notes.onset_strength(notes.analysis_spectrogram(r.y, r.sr))
    assert notes.pulse_clarity(music) > 0.4 and notes.envelope_contrast(music) > 3.0
    # Under white noise as loud as itself the riff's beat is still there.
    loud = r.y + _noise("white", r.y.size / r.sr, r.sr, seed=5) * np.sqrt(
        np.mean(r.y ** 2) / np.mean(_noise("white", r.y.size / r.sr, r.sr, seed=5) ** 2))
    assert notes.pulse_clarity(notes.onset_strength(notes.analysis_spectrogram(loud, r.sr))) > 0.2


def test_only_a_changing_sound_has_spectral_change():
    sr = notes.ANALYSIS_SR
    t = np.arange(12 * sr) / sr
    swelling = _noise("white", 12, sr, seed=6) * (1.0 + 0.8 * np.sin(2 * np.pi * 0.3 * t))
    for still in [_noise(kind, 12, sr, seed=3) for kind in ("white", "pink", "brown")] + [
            swelling.astype(np.float32)]:
        assert notes.spectral_change(notes.analysis_spectrogram(still, sr)) < 0.7
    r = riff(bpm=140, bars=8, seed=4)
    assert notes.spectral_change(notes.analysis_spectrogram(r.y, r.sr)) > 2.0


def test_new_partials_tell_a_new_note_from_a_drum_hit_over_a_held_chord():
    sr = notes.ANALYSIS_SR
    t = np.arange(6 * sr) / sr
    # An A2 power chord held for 6 s; at 2 s a drum-like noise burst hits over it, at 4 s a
    # C4 note is picked over it. Both onsets are clearly detected.
    chord = sum(np.sin(2 * np.pi * f0 * h * t) * 0.6 ** h for f0 in (110.0, 165.0)
                for h in range(1, 6))
    burst = np.random.default_rng(0).standard_normal(t.size) * np.exp(-40 * np.maximum(t - 2, 0))
    burst[t < 2] = 0.0
    picked = render([4.0], [60], sr=sr, duration_s=6.0, note_s=1.5)
    y = (0.2 * chord + 0.3 * burst + picked).astype(np.float32)
    spec = notes.analysis_spectrogram(y, sr)
    found = notes.detect_onsets(notes.onset_strength(spec))
    for onset_s in (2.0, 4.0):
        assert np.min(np.abs(found.times - onset_s)) < 0.03
    frames = np.round(np.array([2.0, 4.0]) * notes.FRAME_RATE).astype(np.int64)
    drum, note = notes.new_partials(spec, frames)
    assert drum < 0.2 and note > 0.4
    assert notes.new_partials(spec, np.zeros(0, np.int64)).shape == (0,)



def test_sixteenth_slots_on_the_beat_grid():
    beats = np.array([1.0, 1.5, 2.0, 2.6])                 # the grid may breathe
    times = np.array([0.9, 1.0, 1.13, 1.74, 1.99, 2.3, 2.6, 2.7])
    np.testing.assert_array_equal(notes.sixteenth_slots(times, beats),
                                  [-1, 0, 1, 6, 8, 10, 12, -1])
    assert notes.sixteenth_slots(times, np.array([1.0])).tolist() == [-1] * times.size


def test_snap_to_grid_puts_onsets_on_the_grid_they_were_played_on():
    rng = np.random.default_rng(3)

    def heard_on(played, beats):
        heard = played + rng.uniform(-0.005, 0.005, played.size)   # a detected onset: +-5 ms
        tracked = beats + rng.uniform(-0.006, 0.006, beats.size)   # a tracked beat: +-6 ms
        return np.abs(notes.snap_to_grid(heard, tracked).times - played), np.abs(heard - played)

    # 16ths at 120 BPM; the tracked beats move onto the grid too.
    snapped, heard = heard_on(1.0 + np.arange(150) * 0.125, 1.0 + np.arange(40) * 0.5)
    assert np.median(snapped) < 0.001 and snapped.max() < 0.0025 < heard.max()
    tracked = 1.0 + np.arange(40) * 0.5 + rng.uniform(-0.006, 0.006, 40)
    grid = notes.snap_to_grid(1.0 + np.arange(150) * 0.125, tracked)
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
    assert np.abs(notes.snap_to_grid(played, beats).times - played).max() < 0.005
    # Notes in free time (uniformly anywhere) are left where they were heard.
    free = np.sort(rng.uniform(0, 20, 120))
    assert np.mean(notes.snap_to_grid(free, np.arange(0, 21, 0.5)).times == free) >= 0.95
    # No grid, no onsets.
    assert notes.snap_to_grid(free, np.array([1.0])).times.tolist() == free.tolist()
    assert notes.snap_to_grid(np.zeros(0), np.arange(10.0)).times.size == 0


def test_repeat_consensus_lowers_what_the_repeats_lack_and_nothing_else():
    # 32 beats of a riff repeated every bar (strong onsets on beats and "and"s), plus one weak
    # stray 16th in bar 2 that no other bar has; a flat spectrogram makes every bar sound alike.
    beats = np.arange(33) * 0.5
    riff_times = np.sort(np.r_[beats[:-1], beats[:-1] + 0.25])
    times = np.sort(np.r_[riff_times, 4.625])
    score = np.where(np.isin(times, riff_times), 0.8, 0.45)
    spec = notes.Spectrogram(np.ones((notes.N_FFT // 2 + 1, int(17 * notes.FRAME_RATE)),
                                     np.float32))
    out = notes.repeat_consensus(spec, times, score, beats)
    assert np.all(out <= score)
    np.testing.assert_array_equal(out[score == 0.8], 0.8)   # the riff's onsets recur: kept
    assert out[times == 4.625][0] < 0.35 < 0.45              # the stray falls under threshold
    # Strong onsets at random 16ths, no bar like another: the bars do not repeat, nothing changes.
    rng = np.random.default_rng(0)
    random_times = np.sort(rng.choice(np.arange(128), 48, replace=False) * 0.125)
    random_score = rng.uniform(0.4, 1.0, random_times.size)
    np.testing.assert_array_equal(
        notes.repeat_consensus(spec, random_times, random_score, beats), random_score)
    # Too short to have repeats, or no onsets: unchanged.
    np.testing.assert_array_equal(notes.repeat_consensus(spec, times, score, beats[:8]), score)
    assert notes.repeat_consensus(spec, np.zeros(0), np.zeros(0), beats).shape == (0,)
    with pytest.raises(notes.NotesError):
        notes.repeat_consensus(spec, times, score[:-1], beats)

def test_strongest_apart_keeps_the_strongest_events_apart():
    times = np.array([0.0, 0.05, 0.1, 0.3, 0.32])
    keep = notes.strongest_apart(times, np.array([0.5, 1.0, 0.4, 0.2, 0.9]), min_gap_s=0.1)
    np.testing.assert_array_equal(keep, [1, 4])
    assert np.all(np.diff(times[keep]) >= 0.1)


def test_invalid_input_is_rejected():
    with pytest.raises(notes.NotesError):
        notes.analysis_spectrogram(np.zeros((2, 3, 4)), 22050)
    with pytest.raises(notes.NotesError):
        notes.analysis_spectrogram(np.zeros(0), 22050)
    with pytest.raises(notes.NotesError):
        notes.analysis_spectrogram(np.zeros(100), 1000)
    with pytest.raises(notes.NotesError):
        notes.detect_onsets(np.zeros((3, 3)))


def test_stereo_is_averaged():
    r = riff(seed=2)
    stereo = np.stack([r.y, r.y])
    a = notes.analysis_spectrogram(r.y, r.sr).magnitude
    b = notes.analysis_spectrogram(stereo, r.sr).magnitude
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_basic_pitch_onnx_transcribes_a_melody():
    if importlib.util.find_spec("basic_pitch") is None:
        pytest.skip("basic-pitch is not installed")
    sr = 22050
    times, pitches = [0.3, 0.8, 1.3, 1.8, 2.3], [60, 64, 67, 72, 67]
    y = render(times, pitches, sr=sr, duration_s=3.0, note_s=0.45)
    found = notes.transcribe(y, sr)
    assert all(isinstance(n, notes.PitchedNote) for n in found)
    # The confident notes are exactly the played ones (weaker octave ghosts may come with them).
    strong = [n for n in found if n.amplitude >= 0.5]
    assert [n.pitch for n in strong] == pitches
    np.testing.assert_allclose([n.t for n in strong], times, atol=0.03)
    np.testing.assert_allclose([n.dur for n in strong], 0.45, atol=0.06)


@pytest.mark.parametrize("n_mels", [40, 128])
def test_mel_filterbank_is_librosas(n_mels):
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=notes.ANALYSIS_SR, n_fft=notes.N_FFT, n_mels=n_mels)
    assert np.allclose(notes.mel_filterbank(n_mels), expected, rtol=1e-5, atol=1e-9)


def test_charting_imports_no_heavy_modules():
    # scipy.signal, librosa and numba cost ~1.5-2 s CPU per process: more than charting a song.
    import subprocess
    import sys
    code = ("import sys, numpy as np; from analyzer.charting import chart_notes; "
            "from tests.plucked import riff; r = riff(sr=44100, seed=1); chart_notes(r.y, r.sr); "
            "print(sorted(m for m in ('scipy.signal', 'librosa', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_alternate_pulses_takes_the_parity_with_more_weight_nearby():
    pulses = np.arange(40) * 0.25
    # Notes on even pulses (heavier) up to 5 s, then on odd ones; one stray odd note early.
    times = np.concatenate([np.arange(0, 5.0, 0.5), [1.25], np.arange(5.25, 10.0, 0.5)])
    order = np.argsort(times)
    weight = np.concatenate([np.ones(10), [3.0], np.ones(10)])[order]
    out = notes.alternate_pulses(pulses, times[order], weight, window=4)
    assert out.size == 20
    np.testing.assert_allclose(out[:8], np.arange(8) * 0.5)
    np.testing.assert_allclose(out[12:], 6.25 + np.arange(8) * 0.5)
    # A note off every pulse counts nowhere; ties (nothing near) keep the even pulses.
    np.testing.assert_allclose(notes.alternate_pulses(pulses, np.array([0.11]), np.ones(1)),
                               pulses[::2])
    with pytest.raises(notes.NotesError):
        notes.alternate_pulses(pulses, np.zeros(3), np.ones(2))
    # Fewer pairs than the window (a short song), and none at all.
    few = notes.alternate_pulses(pulses[:6], np.array([0.25, 0.75, 1.25]), np.ones(3))
    np.testing.assert_allclose(few, [0.25, 0.75, 1.25])
    assert notes.alternate_pulses(pulses[:1], np.array([0.0]), np.ones(1)).size == 0


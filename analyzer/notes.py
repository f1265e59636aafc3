"""What sounds at each onset of a recording: its pitch, its partials, how long it rings.

API
---
- :func:`onset_pitches` — the dominant pitch (MIDI) right after each onset, by harmonic summation.
- :func:`onset_spectra` / :func:`onset_similarity` / :func:`onset_intervals` — how each onset
  sounds; how much like the previous one (a repeat or a change of note), and by how many
  semitones its partials moved (the melody's contour): what lanes follow.
- :func:`new_partials` — how much of the spectrum's tonal peaks right after each onset are new
  (a picked note brings new partials; a drum hit over a held chord does not).
- :func:`partial_rise` — how much an onset's own partials rise across it (a note picked again
  dips and rises; a held chord under a drum hit does not).
- :func:`repeat_consensus` — onset scores lowered where the bars that sound the same do not
  repeat them.
- :func:`ring_durations` — how long each onset's pitch keeps sounding (sustain candidates).
- :func:`pitched_rests` — the frames where the pitched part above the bass rests (a drum intro,
  a break): nothing there for a charter to chart.
- :func:`transcribe` / :func:`basic_pitch_session` — polyphonic notes with basic-pitch's ONNX
  model. Not used by the default charting (see :mod:`analyzer.onsets` for why);
  ``benchmarks/chart_quality --basic-pitch`` measures it.

Every function reads the analysis spectrogram (:func:`analyzer.onsets.analysis_spectrogram`),
most of them at onset times from :func:`analyzer.onsets.detect_onsets`. The pitch at each onset
only has to order lanes, which harmonic summation over that same STFT does for a few
milliseconds.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .beats import sixteenth_slots
from .onsets import (ANALYSIS_SR, COMPRESSION, FRAME_RATE, HOP_LENGTH, N_FFT, NotesError,
                     Spectrogram, mel_filterbank, to_analysis_rate)

__all__ = [
    "MIDI_RANGE", "PitchedNote", "onset_pitches", "onset_spectra", "onset_similarity",
    "onset_intervals", "new_partials", "partial_rise", "repeat_consensus", "ring_durations",
    "pitched_rests", "transcribe", "basic_pitch_session",
]


#: Pitches the salience search considers: E1 (low bass string) .. C7 (top of a guitar solo).
MIDI_RANGE = (28, 96)


@dataclass(frozen=True)
class PitchedNote:
    """A transcribed note: start and length in seconds, MIDI pitch, amplitude 0..1."""

    t: float
    dur: float
    pitch: int
    amplitude: float


def _salience_matrix(pitches: np.ndarray, n_harmonics: int = 6, decay: float = 0.8) -> np.ndarray:
    """Weights (pitches, bins): harmonic ``h`` of each pitch's fundamental counts ``decay**(h-1)``,
    spread linearly over the two nearest bins."""
    n_bins = N_FFT // 2 + 1
    w = np.zeros((pitches.size, n_bins), np.float32)
    f0 = 440.0 * 2.0 ** ((pitches - 69) / 12.0)
    for h in range(1, n_harmonics + 1):
        pos = h * f0 * N_FFT / ANALYSIS_SR
        lo = np.floor(pos).astype(int)
        frac = pos - lo
        ok = lo + 1 < n_bins
        rows = np.flatnonzero(ok)
        w[rows, lo[ok]] += decay ** (h - 1) * (1 - frac[ok])
        w[rows, lo[ok] + 1] += decay ** (h - 1) * frac[ok]
    return w


def _after_onsets(spec: Spectrogram, times: np.ndarray, settle_s: float, window_s: float,
                  bins=slice(None)) -> np.ndarray:
    """The log-magnitude spectrum (``bins``, onsets) averaged over ``window_s`` seconds starting
    ``settle_s`` after each onset: the note's sound past its pick noise."""
    first = np.round((times + settle_s) * FRAME_RATE).astype(int)
    width = max(1, int(round(window_s * FRAME_RATE)))
    frames = np.clip((first[:, None] + np.arange(width)[None, :]).ravel(), 0, spec.n_frames - 1)
    cells = spec.log_magnitude(bins, frames)
    return cells.reshape(cells.shape[0], times.size, width).mean(axis=2)


def onset_pitches(spec: Spectrogram, times: np.ndarray, *, settle_s: float = 0.03,
                  window_s: float = 0.05,
                  stickiness: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """The dominant pitch just after each onset, by harmonic summation.

    The spectrum is averaged over ``window_s`` seconds starting ``settle_s`` after the onset (past
    the pick noise); each MIDI pitch in :data:`MIDI_RANGE` scores the weighted sum of its first six
    harmonics; the best one wins, unless the previous note's pitch scores within ``stickiness``
    (a fraction) of it, which then repeats.

    Returns
    -------
    pitches : np.ndarray [shape=(n,), dtype=int]
        MIDI numbers.
    salience : np.ndarray [shape=(n,)]
        The winning score (comparable within one recording).

    Examples
    --------
    >>> from analyzer.onsets import analysis_spectrogram
    >>> sr = ANALYSIS_SR; t = np.arange(sr) / sr
    >>> y = sum(np.sin(2 * np.pi * 196.0 * h * t) / h for h in (1, 2, 3))   # G3 = MIDI 55
    >>> onset_pitches(analysis_spectrogram(y, sr), np.array([0.2]))[0]
    array([55])
    """
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    pitches = np.arange(MIDI_RANGE[0], MIDI_RANGE[1] + 1)
    sal = _salience_matrix(pitches) @ _after_onsets(spec, times, settle_s, window_s)
    best = np.argmax(sal, axis=0)
    # Continuity: when the previous note's pitch scores within ``stickiness`` of the best, it is
    # the same note again (a chugged chord's partials shift a little from hit to hit).
    for i in range(1, times.size):
        if sal[best[i - 1], i] >= (1.0 - stickiness) * sal[best[i], i]:
            best[i] = best[i - 1]
    return pitches[best].astype(np.int64), sal[best, np.arange(times.size)]


def onset_spectra(spec: Spectrogram, times: np.ndarray, *, settle_s: float = 0.03,
                  window_s: float = 0.05, max_hz: float = 4300.0) -> np.ndarray:
    """How each onset's note sounds: the log-magnitude spectrum below ``max_hz``, averaged over
    ``window_s`` seconds from ``settle_s`` after the onset (past the pick noise, as
    :func:`onset_pitches` reads it). What :func:`onset_similarity` and :func:`onset_intervals`
    compare; computed once, any subset of its columns (the notes a difficulty keeps) is again
    valid input for them.

    Parameters
    ----------
    spec : Spectrogram
        The analysis spectrogram (:func:`analyzer.onsets.analysis_spectrogram`).
    times : np.ndarray [shape=(n,)]
        Onset times, seconds.
    settle_s, window_s : float
        Seconds after each onset where the average starts, and how long it runs.
    max_hz : float
        Highest frequency kept.

    Returns
    -------
    np.ndarray [shape=(bins, n)]
        ``bins`` STFT bins from 0 Hz up to ``max_hz``.

    Examples
    --------
    >>> from analyzer.onsets import analysis_spectrogram
    >>> sr = ANALYSIS_SR; t = np.arange(sr) / sr
    >>> y = np.where(t < 0.5, np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t))
    >>> spectra = onset_spectra(analysis_spectrogram(y, sr), np.array([0.1, 0.6]))
    >>> spectra.shape[1], [int(np.argmax(c)) * sr // N_FFT for c in spectra.T]   # bin -> Hz
    (2, [215, 322])
    """
    times = np.asarray(times, dtype=np.float64)
    return _after_onsets(spec, times, settle_s, window_s,
                         bins=slice(0, int(max_hz * N_FFT / ANALYSIS_SR) + 1))


def onset_similarity(spectra: np.ndarray, *, partial_bins: int = 12) -> np.ndarray:
    """How much each onset sounds like the one before, -1..1.

    Each onset's spectrum (``spectra``, from :func:`onset_spectra`) is compared with the
    previous onset's twice, and the two cosine similarities are averaged:

    - the spectrum less its mean: its broad shape (a palm-muted chug against an open chord, a
      band that drops out);
    - the spectrum less its running mean over ``±partial_bins`` bins (±260 Hz): where its
      partials sit (two notes of one timbre differ here only).

    A chord struck again sounds the same whatever else the band plays over it; a new chord or
    note does not. On a mix this tells a repeat from a change where the dominant pitch cannot
    (a guitar's low notes are a few bins apart, and the bass and a second guitar shift the
    winner). Measured on the 8 songs of ``benchmarks/chart_quality`` at the human Expert onsets:
    it marks "same lane as the previous note" with AUC 0.64-0.80 on 7 songs (0.51 on one whose
    charter moves the lane on most repeats), where the dominant pitch's "unchanged" is right no
    more often than chance.

    Returns
    -------
    np.ndarray [shape=(n,)]
        The first onset, with none before it, gets 0.

    Examples
    --------
    >>> from analyzer.onsets import analysis_spectrogram
    >>> sr = ANALYSIS_SR; t = np.arange(sr // 4) / sr
    >>> note = lambda f: (sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 7))
    ...                   * np.exp(-6 * t))
    >>> hit = np.random.default_rng(0).standard_normal(t.size) * np.exp(-30 * t)   # a drum
    >>> y = np.concatenate([note(110), note(110), note(110) + hit, note(147)])  # A2 A2 A2 D3
    >>> sound = onset_spectra(analysis_spectrogram(y, sr), np.arange(4) * 0.25)
    >>> np.round(onset_similarity(sound), 1)
    array([0. , 1. , 0.8, 0.3])
    """
    out = np.zeros(spectra.shape[1])
    if out.size < 2:
        return out
    for centred in (spectra - spectra.mean(axis=0, keepdims=True),
                    spectra - _running_mean(spectra, partial_bins)):
        norm = np.maximum(np.linalg.norm(centred, axis=0), 1e-9)
        out[1:] += np.sum(centred[:, 1:] * centred[:, :-1], axis=0) / (norm[1:] * norm[:-1]) / 2
    return out


def onset_intervals(spectra: np.ndarray, *, fmin: float = 100.0, fmax: float = 4000.0,
                    steps_per_semitone: int = 3, max_semitones: float = 7.0) -> np.ndarray:
    """The interval from each onset's note to the next one's, in semitones, from how far the
    pattern of partials moved.

    Each onset's spectrum (``spectra``, from :func:`onset_spectra`, reaching at least ``fmax``)
    is resampled onto a log-frequency axis (``fmin``..``fmax``, ``steps_per_semitone`` points a
    semitone), its running mean over ±2 semitones taken out and what stays above it kept: the
    partials. The interval is the shift (within ±``max_semitones``; a wider leap reads as a
    smaller one) at which the previous onset's partials best line up with this one's. A
    transposed chord or riff moves all its partials by the same interval, whatever its root, so
    this follows a melody on a mix where the dominant pitch sticks to the bass or a second
    guitar. Measured on the 8 songs of ``benchmarks/chart_quality`` at the human Expert onsets:
    where the human lane moves, the interval's sign says which way on 53-77 % of the moves it
    gives a direction for (39-94 % of them), and the lanes it makes move the human's way on
    0.476 of consecutive notes on the development songs against 0.429 with the pitch estimate
    (see ``analyzer.charting``).

    Returns
    -------
    np.ndarray [shape=(n,)]
        Semitones (a multiple of ``1 / steps_per_semitone``; up positive); 0 for the first
        onset and where either note has no partials.

    Examples
    --------
    >>> from analyzer.onsets import analysis_spectrogram
    >>> sr = ANALYSIS_SR; t = np.arange(sr // 4) / sr
    >>> chord = lambda f: sum(np.sin(2 * np.pi * f * k * h * t) / h
    ...                       for k in (1, 1.5) for h in range(1, 7))   # a power chord
    >>> y = np.concatenate([chord(110.0), chord(147.0), chord(123.5), chord(123.5)])
    >>> onset_intervals(onset_spectra(analysis_spectrogram(y, sr), np.arange(4) * 0.25))
    array([ 0.,  5., -3.,  0.])
    """
    out = np.zeros(spectra.shape[1])
    if out.size < 2:
        return out
    to_log = _log_frequency_matrix(fmin, fmax, steps_per_semitone)
    if spectra.shape[0] < to_log.shape[1]:
        raise NotesError(f"onset spectra stop below {fmax:g} Hz")
    s = to_log @ spectra[:to_log.shape[1]]
    partials = np.maximum(s - _running_mean(s, 2 * steps_per_semitone), 0.0)
    before, after = partials[:, :-1], partials[:, 1:]
    n = partials.shape[0]
    lags = np.arange(-int(max_semitones * steps_per_semitone),
                     int(max_semitones * steps_per_semitone) + 1)
    match = np.stack([np.sum(before[max(0, -lag):n - max(0, lag)]
                             * after[max(0, lag):n - max(0, -lag)], axis=0) for lag in lags])
    # No partials on one side (silence, noise): no interval rather than the first lag tried.
    best = np.where(match.max(axis=0) > 0, lags[np.argmax(match, axis=0)], 0)
    out[1:] = best / steps_per_semitone
    return out


@functools.lru_cache(maxsize=4)
def _log_frequency_matrix(fmin: float, fmax: float, steps_per_semitone: int) -> np.ndarray:
    """Linear interpolation (log-frequency points, STFT bins) from the STFT's bins onto points
    ``steps_per_semitone`` a semitone apart from ``fmin`` to ``fmax`` Hz."""
    n = int(12 * steps_per_semitone * np.log2(fmax / fmin)) + 1
    pos = fmin * 2.0 ** (np.arange(n) / (12 * steps_per_semitone)) * N_FFT / ANALYSIS_SR
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    out = np.zeros((n, int(lo.max()) + 2), np.float32)
    out[np.arange(n), lo] = 1 - frac
    out[np.arange(n), lo + 1] = frac
    return out


def _running_mean(x: np.ndarray, half_width: int) -> np.ndarray:
    """Mean of ``x`` (rows, columns) over ``±half_width`` rows, the edge rows repeated."""
    width = 2 * half_width + 1
    padded = np.pad(x, ((half_width, half_width), (0, 0)), mode="edge")
    running = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
    return (running[width:] - running[:-width]) / width


def partial_rise(spec: Spectrogram, times: np.ndarray, spectra: np.ndarray, *,
                 partial_bins: int = 12, top: float = 0.1) -> np.ndarray:
    """How much each onset's own partials rise across it (log-magnitude units).

    The partials are the bins of the onset's spectrum (``spectra``, from :func:`onset_spectra`)
    standing furthest above its running mean over ``±partial_bins`` bins (the ``top`` fraction).
    Their mean log magnitude 12-35 ms after the onset, less the same 58-23 ms before it: a note
    picked again dips and rises, a chord held while a drum hits over it does not (the drum lifts
    every bin a little, its partials no more).

    Returns
    -------
    np.ndarray [shape=(n,)]

    Examples
    --------
    >>> from analyzer.onsets import analysis_spectrogram
    >>> sr = ANALYSIS_SR; t = np.arange(3 * sr) / sr
    >>> chord = sum(np.sin(2 * np.pi * f * h * t) * 0.6 ** h
    ...             for f in (110, 165) for h in range(1, 6))
    >>> level = np.exp(-1.5 * np.where(t < 2, t, t - 2))            # struck at 0 s, again at 2 s
    >>> hit = np.random.default_rng(0).standard_normal(t.size) * np.exp(-60 * (t - 1)) * (t >= 1)
    >>> y = (0.2 * chord * level + 0.1 * hit).astype(np.float32)    # a drum over it at 1 s
    >>> spec = analysis_spectrogram(y, sr); onsets = np.array([1.0, 2.0])
    >>> partial_rise(spec, onsets, onset_spectra(spec, onsets)).round(1)
    array([0.6, 2.8])
    """
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0:
        return np.zeros(0)
    bins = slice(0, spectra.shape[0])
    after = _after_onsets(spec, times, 0.012, 0.023, bins=bins)
    before = _after_onsets(spec, times, -0.058, 0.035, bins=bins)
    standing = spectra - _running_mean(spectra, partial_bins)
    partials = standing >= np.quantile(standing, 1.0 - top, axis=0, keepdims=True)
    return ((after - before) * partials).sum(axis=0) / partials.sum(axis=0)


def new_partials(spec: Spectrogram, frames: np.ndarray, *, before: tuple[int, int] = (-5, -1),
                 after: tuple[int, int] = (1, 4), margin: float = 1.0,
                 neighbourhood: int = 2) -> np.ndarray:
    """The fraction of the tonal peaks just after each onset that were not there just before.

    The compressed spectrum (``log1p(100 * magnitude / max)``) is averaged over the frames
    ``before`` (``frame + before[0]`` up to, not including, ``frame + before[1]``: ~58-23 ms
    earlier) and ``after`` (~12-35 ms later, past the pick noise). A peak is a bin that is the
    largest within ``±neighbourhood`` bins and at least ``margin`` (log units, ~9 dB) above its
    frame's median bin; a peak after the onset is new unless a peak before sat within one bin.

    A picked or strummed note starts new partials (a change of pitch, or a chord struck again
    after its partials died down); a drum hit, a cymbal or a second instrument sounding
    over a held chord adds broadband energy under the chord's old peaks. Measured on the 8 songs
    of ``benchmarks/chart_quality`` (onsets of the mix, labelled by the isolated guitar stem): an
    onset is the guitar's with AUC 0.60-0.84 given its onset strength, on every song.

    Parameters
    ----------
    spec : Spectrogram
    frames : np.ndarray [shape=(n,), dtype=int]
        Onset frames (``times * FRAME_RATE``).

    Returns
    -------
    np.ndarray [shape=(n,)]
        0..1 (0 also where no peak follows the onset).

    Examples
    --------
    >>> from analyzer.onsets import analysis_spectrogram
    >>> sr = ANALYSIS_SR; t = np.arange(2 * sr) / sr
    >>> y = np.sin(2 * np.pi * 220.0 * t) + (t > 1.0) * np.sin(2 * np.pi * 330.0 * t)
    >>> new_partials(analysis_spectrogram(y, sr), np.array([86]))   # 330 Hz starts at 1 s
    array([0.5])
    """
    frames = np.asarray(frames, dtype=np.int64)
    if frames.size == 0:
        return np.zeros(0)
    top = max(float(spec.magnitude.max()), 1e-12)

    def mean_spectrum(lo: int, hi: int) -> np.ndarray:
        total = np.zeros((spec.magnitude.shape[0], frames.size), np.float32)
        for offset in range(lo, hi):
            cols = np.clip(frames + offset, 0, spec.n_frames - 1)
            total += np.log1p(spec.magnitude[:, cols] * np.float32(COMPRESSION / top))
        return total / (hi - lo)                                            # (bins, n)

    def peaks(s: np.ndarray) -> np.ndarray:
        padded = np.pad(s, ((neighbourhood, neighbourhood), (0, 0)), mode="edge")
        local_max = s.copy()
        for shift in range(2 * neighbourhood + 1):
            np.maximum(local_max, padded[shift:shift + s.shape[0]], out=local_max)
        middle = s.shape[0] // 2
        median = np.partition(s, middle, axis=0)[middle]
        return (s == local_max) & (s >= median + margin)

    old, new = peaks(mean_spectrum(*before)), peaks(mean_spectrum(*after))
    near_old = old.copy()
    near_old[1:] |= old[:-1]
    near_old[:-1] |= old[1:]
    count = new.sum(axis=0)
    return np.where(count > 0, (new & ~near_old).sum(axis=0) / np.maximum(count, 1), 0.0)


def repeat_consensus(spec: Spectrogram, times: np.ndarray, score: np.ndarray,
                     beats: np.ndarray, *, neighbours: int = 3, weight: float = 0.5,
                     strong: float = 0.5,
                     agreement: tuple[float, float] = (0.5, 0.8)) -> np.ndarray:
    """Onset scores lowered where the bars that repeat this one lack the onset.

    Riffs repeat, and a charter charts a repeated bar the same way each time: in the human
    Expert charts of ``benchmarks/chart_quality`` a 4-beat window's 16th-note pattern overlaps
    (Jaccard) 58-95 % with that of the window that sounds most like it, 33-54 % with a random
    window's; the charts of a global threshold only 55-78 %, onsets near the threshold coming
    and going from one repeat to the next. So each 4-beat window of the beat grid is matched to
    the ``neighbours`` windows that sound most like it (cosine similarity of log-mel energy in
    16 bands per 16th note, at least a bar away). Where the onsets of at least ``strong`` score
    recur in those windows (their mean Jaccard overlap rises from ``agreement[0]`` to
    ``agreement[1]``, the gate ``g`` from 0 to ``weight``), an onset's score becomes
    ``min(score, (1 - g) * score + g * m)``, ``m`` the median of the highest score at the same
    16th of the matched windows: an onset the repeats lack is lowered (at most halved), one they
    hold stays, none is raised. Where bars do not repeat their strong onsets (the random
    synthetic riffs of the tests) the gate stays shut or nearly so: no charted note changes.

    Parameters
    ----------
    spec : Spectrogram
    times : np.ndarray [shape=(n,)]
        Onset times (s), e.g. from :func:`~analyzer.onsets.detect_onsets`, weaker than charted
        ones included (they are what a repeat holds at a 16th).
    score : np.ndarray [shape=(n,)]
        Each onset's score (onset strength times the charter's weights; ~1 = a loud onset).
    beats : np.ndarray [shape=(b,)]
        Beat times (s), e.g. :func:`~analyzer.beats.track_beats`.

    Returns
    -------
    np.ndarray [shape=(n,)]
        The scores, none higher than given; unchanged for onsets outside the beats and for
        fewer than ``neighbours + 12`` beats.

    Notes
    -----
    Measured with ``benchmarks/chart_quality`` (threshold 0.35 either way): development songs
    Expert F 0.700 -> 0.703 at 1.30x -> 1.25x the human notes/s, Hard 0.626 -> 0.631, Medium
    0.376 -> 0.377 (a global threshold of 0.37, the same density, scores 0.698); benchmark songs
    Expert 0.735 -> 0.739 at 1.24x -> 1.20x, Hard, Medium and Easy within 0.001. Choosing each
    song's threshold by how consistently its chart repeats scored 0.57-0.67 instead (see the
    README's sixth round). Cost: 0.15-0.17 s CPU for a 198 s song (mostly the log-mel).

    Examples
    --------
    >>> beats = np.arange(33) * 0.5                      # 32 beats, a riff on beats and "and"s
    >>> times = np.sort(np.r_[beats[:-1], beats[:-1] + 0.25, 3.125])   # + one stray 16th
    >>> score = np.where(times == 3.125, 0.5, 0.8)
    >>> spec = Spectrogram(np.ones((N_FFT // 2 + 1, int(17 * FRAME_RATE)), np.float32))
    >>> out = repeat_consensus(spec, times, score, beats)
    >>> float(out[times == 3.125][0]), bool(np.all(out[times != 3.125] == 0.8))
    (0.25, True)
    """
    times = np.asarray(times, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    if times.shape != score.shape or times.ndim != 1:
        raise NotesError("times and score must be one-dimensional and of the same length")
    out = score.copy()
    n_beats = beats.size - 1                      # beat intervals, 4 slots each
    n_windows = n_beats - 3                       # 4-beat windows, one starting at every beat
    if n_windows < neighbours + 8:
        return out
    # Log-mel energy per 16th note in 16 bands (of 128 mel bands): what a window sounds like.
    bands = 16
    log_mel = np.log1p(100.0 * (mel_filterbank() @ spec.magnitude))
    log_mel = log_mel.reshape(bands, -1, log_mel.shape[1]).mean(axis=1)
    edges = beats[:-1, None] + np.diff(beats)[:, None] * np.arange(4) / 4
    edges = np.clip(np.round(np.append(edges.ravel(), beats[-1]) * FRAME_RATE).astype(np.int64),
                    0, spec.n_frames - 1)
    cumulative = np.concatenate([np.zeros((bands, 1)), np.cumsum(log_mel, axis=1)], axis=1)
    length = np.maximum(edges[1:] - edges[:-1], 1)
    per_slot = (cumulative[:, edges[:-1] + length] - cumulative[:, edges[:-1]]) / length
    per_beat = per_slot.T.reshape(n_beats, 4 * bands)
    per_beat = per_beat - per_beat.mean(axis=0)
    windows = np.lib.stride_tricks.sliding_window_view(per_beat, (4, 4 * bands))[:, 0]
    windows = windows.reshape(n_windows, -1)
    windows = windows - windows.mean(axis=1, keepdims=True)
    windows /= np.linalg.norm(windows, axis=1, keepdims=True) + 1e-12
    # The most similar windows, a block of rows at a time: memory stays linear in the song's
    # length (a 30-minute file has ~6000 windows).
    matched = np.empty((n_windows, neighbours), np.int64)
    lag = np.arange(n_windows)
    for lo in range(0, n_windows, 512):
        similarity = windows[lo:lo + 512] @ windows.T
        similarity[np.abs(lag[lo:lo + 512, None] - lag[None, :]) < 4] = -np.inf  # overlaps
        matched[lo:lo + 512] = np.argpartition(-similarity, neighbours, axis=1)[:, :neighbours]
    # The highest score at every 16th, and which windows' strong onsets recur in their matches.
    slot = sixteenth_slots(times, beats)
    at_slot = np.zeros(4 * n_beats + 1)
    np.maximum.at(at_slot, slot[slot >= 0], score[slot >= 0])
    ok = (slot >= 0) & (slot // 4 < n_windows)    # onsets in a window's first beat
    strong_at = np.lib.stride_tricks.sliding_window_view(at_slot[:4 * n_windows + 12] >= strong,
                                                         16)[::4]
    both = (strong_at[:, None, :] & strong_at[matched]).sum(axis=2)
    either = (strong_at[:, None, :] | strong_at[matched]).sum(axis=2)
    overlap = (both / np.maximum(either, 1)).mean(axis=1)
    gate = weight * np.clip((overlap - agreement[0]) / (agreement[1] - agreement[0]), 0.0, 1.0)
    window, k = slot[ok] // 4, slot[ok] % 4
    repeated = np.median(at_slot[4 * matched[window] + k[:, None]], axis=1)
    g = gate[window]
    out[ok] = np.minimum(score[ok], (1.0 - g) * score[ok] + g * repeated)
    return out


def ring_durations(spec: Spectrogram, times: np.ndarray, pitches: np.ndarray, *,
                   floor: float = 0.5, max_s: float = 4.0) -> np.ndarray:
    """How long each note's pitch keeps sounding, seconds.

    The harmonic-summation salience of the note's own pitch is followed from the onset until it
    falls below ``floor`` times its value at the onset or the next onset arrives (capped at
    ``max_s``). The charting step turns rings longer than a beat into sustains.

    Examples
    --------
    >>> from analyzer.onsets import analysis_spectrogram
    >>> sr = ANALYSIS_SR; t = np.arange(2 * sr) / sr
    >>> y = np.where((t > 0.3) & (t < 1.5), np.sin(2 * np.pi * 220.0 * t), 0.0)  # A3, 1.2 s
    >>> ring = ring_durations(analysis_spectrogram(y, sr), np.array([0.3]), np.array([57]))
    >>> abs(float(ring[0]) - 1.2) < 0.05
    True
    """
    times = np.asarray(times, dtype=np.float64)
    pitches = np.asarray(pitches)
    out = np.zeros(times.size)
    if times.size == 0:
        return out
    nxt = np.append(times[1:], spec.duration_s)
    w = _salience_matrix(pitches.astype(np.float64))
    hop = 1.0 / FRAME_RATE
    for i, (t, p_row) in enumerate(zip(times, w)):
        f0 = int(round(t * FRAME_RATE))
        f1 = min(spec.n_frames, int(round(min(nxt[i], t + max_s) * FRAME_RATE)))
        if f1 <= f0 + 2:
            out[i] = max(0.0, (f1 - f0) * hop)
            continue
        bins = np.flatnonzero(p_row)  # the note's own harmonics: a dozen bins of 513
        track = p_row[bins] @ spec.log_magnitude(bins, slice(f0, f1))
        ref = track[: min(4, track.size)].max()
        below = np.flatnonzero(track[2:] < floor * ref)
        out[i] = ((below[0] + 2) if below.size else track.size) * hop
    return out


def pitched_rests(spec: Spectrogram, *, bass_hz: float = 180.0, window_s: float = 2.0,
                  level_db: float = 6.0, share_db: float = 2.0,
                  min_share_db: float = -15.0) -> np.ndarray:
    """Frames where the pitched part of the music above the bass rests: a drum intro, a break.

    The harmonic part of the spectrogram (the soft mask of
    :func:`analyzer.stems.hpss.harmonic_mask`: partials that hold 0.2 s, against hits that
    cover 500 Hz at once) above ``bass_hz`` is summed per frame and averaged over ``window_s``.
    A frame rests where that power is ``level_db`` or more under its median over the recording
    *and* its share of the mix's power ``share_db`` or more under the median share. Both, so
    that a quiet verse (quieter throughout, the pitched share as usual) still plays, and so that
    a passage where the drums drop out (the pitched share up) does too. A recording whose
    pitched part is under ``min_share_db`` of the mix most of the time (drums alone: the mask's
    leakage, about -30 dB; songs -1 to -6 dB) has no pitched part to rest.

    Parameters
    ----------
    spec : Spectrogram
    bass_hz : float
        Below this the harmonic part is the bass, which plays under a drum break too (Hz).
    window_s : float
        Seconds the powers are averaged over (a rest shorter than about half of it is not one).
    level_db, share_db : float
        How far under their medians the pitched power and its share must both be (dB).
    min_share_db : float
        The median share (dB) under which nothing rests.

    Returns
    -------
    np.ndarray [shape=(spec.n_frames,), dtype=bool]

    Notes
    -----
    On the 8 songs of ``benchmarks/chart_quality`` it marks 0-6.4 % of each song: the guitar-less
    intros of 2 of them and 13 s passages of 2 where the charted guitar plays at -28 to -31 dB.
    108 Expert notes were generated there, none of them a human chart's note, and no human note
    is there.

    Examples
    --------
    >>> from analyzer.onsets import analysis_spectrogram
    >>> sr = ANALYSIS_SR; t = np.arange(8 * sr) / sr
    >>> hits = (np.random.default_rng(0).standard_normal(t.size)
    ...         * np.exp(-40 * ((t % 0.5)))).astype(np.float32)       # a drum every 0.5 s
    >>> chord = (0.3 * np.sin(2 * np.pi * 330 * t) * (t >= 4)).astype(np.float32)  # from 4 s
    >>> rests = pitched_rests(analysis_spectrogram(hits + chord, sr))
    >>> bool(rests[int(1.0 * FRAME_RATE)]), bool(rests[int(6.0 * FRAME_RATE)])
    (True, False)
    """
    from .stems.hpss import bass_weights, harmonic_mask

    if spec.n_frames == 0:
        return np.zeros(0, bool)
    # Every other frame and the bins up to 8 kHz are enough for seconds-long means, at a quarter
    # of the cost (0.3 s CPU for a 3-minute song).
    step, rate = 2, FRAME_RATE / 2
    magnitude = spec.magnitude[:int(8000.0 * N_FFT / ANALYSIS_SR), ::step].T   # (frames, bins)
    bin_hz = ANALYSIS_SR / N_FFT
    above = 1.0 - bass_weights(np.arange(magnitude.shape[1]) * bin_hz, bass_hz)
    pitched = (harmonic_mask(magnitude, frame_rate=rate, bin_hz=bin_hz) * magnitude) ** 2 @ above
    # Means over the window, over the frames there are at either end of the recording.
    window = np.ones(max(1, int(round(window_s * rate))))
    frames = np.convolve(np.ones(pitched.size), window, mode="same")
    tiny = np.finfo(np.float32).tiny
    level = 10 * np.log10(np.convolve(pitched, window, mode="same") / frames + tiny)
    mix = np.convolve((magnitude ** 2).sum(axis=1), window, mode="same") / frames
    share = level - 10 * np.log10(mix + tiny)
    typical = np.median(share)
    rests = ((level <= np.median(level) - level_db) & (share <= typical - share_db)
             & (typical >= min_share_db))
    return np.repeat(rests, step)[:spec.n_frames]


def transcribe(y: np.ndarray, sr: int, *, onset_threshold: float = 0.5,
               frame_threshold: float = 0.3, min_note_s: float = 0.06,
               session=None) -> tuple[PitchedNote, ...]:
    """Polyphonic notes with basic-pitch's ICASSP-2022 model, run by onnxruntime (no TensorFlow).

    The audio is cut into basic-pitch's 2-second windows overlapping by 30 frames, exactly as its
    own inference does; the note and onset activations are stitched by dropping half the overlap
    at each side. Notes start at onset-activation peaks above ``onset_threshold`` and
    last while the note activation stays above ``frame_threshold`` (a simplified form of
    basic-pitch's own decoding, pure NumPy).

    Parameters
    ----------
    y, sr : audio and its sample rate (resampled to 22.05 kHz).
    session : onnxruntime.InferenceSession, optional
        A loaded model (see :func:`basic_pitch_session`); loaded on first use otherwise.

    Returns
    -------
    tuple[PitchedNote, ...]
        Sorted by start time, then pitch.

    Raises
    ------
    NotesError
        basic-pitch (its model file) is not installed.
    """
    y = to_analysis_rate(y, sr)
    session = session or basic_pitch_session()
    window = 2 * ANALYSIS_SR - HOP_LENGTH              # basic-pitch's AUDIO_N_SAMPLES
    overlap_frames = 30
    overlap = overlap_frames * HOP_LENGTH
    hop = window - overlap
    padded = np.concatenate([np.zeros(overlap // 2, np.float32), y])
    starts = np.arange(0, padded.size, hop)
    batch = np.zeros((starts.size, window, 1), np.float32)
    for i, s in enumerate(starts):
        chunk = padded[s:s + window]
        batch[i, :chunk.size, 0] = chunk
    # basic-pitch's ONNX graph names its outputs by position: ":1" notes, ":2" onsets (":0" is
    # the pitch contour, unused here); see basic_pitch.inference.Model.predict.
    wanted = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2"]
    name = session.get_inputs()[0].name
    parts: list[list[np.ndarray]] = [[], []]
    for b in range(0, len(batch), 32):
        for acc, value in zip(parts, session.run(wanted, {name: batch[b:b + 32]})):
            acc.append(value)
    n_frames = int(y.size * (ANALYSIS_SR // HOP_LENGTH) / ANALYSIS_SR)  # as basic-pitch trims
    half = overlap_frames // 2

    def unwrap(chunks):
        a = np.concatenate(chunks)[:, half:-half, :]
        return a.reshape(-1, a.shape[-1])[:n_frames]

    note_act, onset_act = unwrap(parts[0]), unwrap(parts[1])
    return _decode_notes(note_act, onset_act, onset_threshold, frame_threshold, min_note_s)


def _decode_notes(note_act, onset_act, onset_threshold, frame_threshold, min_note_s):
    from scipy.signal import argrelmax

    fps = ANALYSIS_SR // HOP_LENGTH
    peaks = np.zeros_like(onset_act, dtype=bool)
    t_idx, p_idx = argrelmax(onset_act, axis=0)
    peaks[t_idx, p_idx] = True
    t_idx, p_idx = np.nonzero(peaks & (onset_act >= onset_threshold))
    notes = []
    n = note_act.shape[0]
    min_frames = max(1, int(round(min_note_s * fps)))
    for t0, p in zip(t_idx, p_idx):
        below = np.flatnonzero(note_act[t0 + 1:, p] < frame_threshold)
        t1 = t0 + 1 + (below[0] if below.size else n - t0 - 1)
        if t1 - t0 < min_frames:
            continue
        notes.append(PitchedNote(float(t0 / fps), float((t1 - t0) / fps), int(p + 21),
                                 float(note_act[t0:t1, p].mean())))
    return tuple(sorted(notes, key=lambda x: (x.t, x.pitch)))


def basic_pitch_session(threads: int | None = None):
    """Load basic-pitch's ONNX model from its installed wheel into an onnxruntime session.

    Raises
    ------
    NotesError
        basic-pitch is not installed (``pip install --no-deps basic-pitch``).
    """
    import importlib.util
    import pathlib

    import onnxruntime as ort

    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or spec.origin is None:
        raise NotesError("basic-pitch is not installed: pip install --no-deps basic-pitch")
    path = pathlib.Path(spec.origin).parent / "saved_models" / "icassp_2022" / "nmp.onnx"
    if not path.is_file():
        raise NotesError(f"basic-pitch's ONNX model is missing: {path}")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

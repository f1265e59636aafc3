"""The beat grid of a recording: its tempo, its beats, and where onsets fall between them.

API
---
- :func:`estimate_tempo` / :func:`local_tempo` / :func:`track_beats` — the song's tempo (BPM),
  the tempo at each moment (a song can change tempo) and beat times (:class:`TempoMap`).
- :func:`pulse_clarity` — whether an onset envelope has a beat at all.
- :func:`beat_phase` / :func:`sixteenth_slots` — where times fall between the beats; the 16th
  of the grid nearest each.
- :func:`snap_to_grid` — onsets and beats moved onto the grid fitted to them where the music is
  on one.
- :func:`steady_beats` / :func:`on_grid` — the beats as a charter's tempo map (a few stretches
  of one tempo: what a chart is published and exported with), and times moved onto its 16ths
  and triplets where they are near one.
- :func:`triplet_feel` — the beats where the music divides the beat in three (a shuffle).
- :func:`alternate_pulses` — every other pulse, the parity the onsets favour (which of the
  beats and the 8ths between them a charter counts as the beat).

Every function reads an onset envelope (:func:`analyzer.onsets.onset_strength`) or onset and
beat times in seconds, never audio.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .onsets import FRAME_RATE, NotesError

__all__ = [
    "TempoMap", "BeatPhase", "Snapped", "estimate_tempo", "local_tempo", "track_beats",
    "pulse_clarity", "beat_phase", "sixteenth_slots", "snap_to_grid", "steady_beats", "on_grid",
    "triplet_feel", "alternate_pulses",
]


#: :func:`local_tempo` reads the onset envelope's periodicity in windows of TEMPO_WINDOW_S
#: seconds, one every TEMPO_HOP_S, ...
TEMPO_WINDOW_S = 8.0
TEMPO_HOP_S = 1.0
#: ... at beat periods within TEMPO_RANGE times the song's (a change of up to 40 % either way;
#: a song that goes to half or double time is counted on at its own tempo), TEMPO_STEP apart
#: (relative) ...
TEMPO_RANGE = 1.4
TEMPO_STEP = 0.0025
#: ... and follows the best path through them that pays TEMPO_CHANGE_COST for each change
#: (in windows' autocorrelations, each at most 1) and TEMPO_DRIFT_COST per unit of log-tempo
#: changed: a tempo changes for a section, not for a bar. On the 8 human-charted songs of
#: benchmarks/chart_quality (each charted at one tempo) the path stays within 0.5 % of the
#: song's tempo throughout; synthetic songs that change from 110 to 150 BPM, 140 to 105 or 100
#: to 130 are followed to the window of the change.
TEMPO_CHANGE_COST = 2.0
TEMPO_DRIFT_COST = 8.0
#: A chart's beats are published as a charter's tempo map (:func:`steady_beats`): stretches of
#: one tempo, each a line that holds at least STEADY_SHARE of the tracked beats within
#: STEADY_TOLERANCE_S (a tracked beat jitters by a frame or two where 16ths blur the beat) ...
STEADY_TOLERANCE_S = 0.025
STEADY_SHARE = 0.75
#: ... and consecutive stretches of at least STEADY_MIN_BEATS beats that one line holds as
#: well, each in phase or half a beat out (a tracker that moved to the "and" and back), are one
#: grid. All 8 songs of benchmarks/chart_quality are played to a click (their human charts hold
#: one tempo): their tracked beats fall into 3-20 such stretches, at the charts' tempo within
#: 0.05 %, each in phase or half a beat out with the others.
STEADY_MIN_BEATS = 16
#: A grid reaches over the tracked beats beside it that keep its tempo: as many beats, their
#: own tempo (a line through them) within STEADY_DRIFT of the grid's.
STEADY_DRIFT = 0.02


@dataclass(frozen=True, eq=False)
class TempoMap:
    """The beat grid: beat times in seconds (ascending; they follow the tempo where it changes,
    :func:`local_tempo`) and the song's tempo in BPM (:func:`estimate_tempo`)."""

    bpm: float
    beats: np.ndarray

    @property
    def beat_s(self) -> float:
        """Seconds per beat at the song's tempo (a beat's own length: ``np.diff(beats)``)."""
        return 60.0 / self.bpm


@dataclass(frozen=True, eq=False)
class BeatPhase:
    """Where times fall on a beat grid (:func:`beat_phase`): the beat each follows (``beat``,
    an index; the first before the grid, the last but one after it), the beats since it
    (``phase``, fractional; outside the grid it extrapolates) and that beat's length in seconds
    (``period``). Arrays shaped like the times."""

    beat: np.ndarray
    phase: np.ndarray
    period: np.ndarray


@dataclass(frozen=True, eq=False)
class Snapped:
    """What :func:`snap_to_grid` gives: onset times and beat times (seconds), each moved onto
    the grid fitted around it where the music is on one."""

    times: np.ndarray
    beats: np.ndarray


def _gaussian(sigma: float) -> np.ndarray:
    """A unit-sum Gaussian kernel of standard deviation ``sigma`` samples, +-4 sigma wide."""
    x = np.arange(-int(4 * sigma + 0.5), int(4 * sigma + 0.5) + 1)
    kernel = np.exp(-0.5 * (x / max(sigma, 1e-9)) ** 2)
    return kernel / kernel.sum()


def _smooth(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``kernel``, same length, the ends mirrored (as scipy.ndimage does,
    without its ~0.4 s import)."""
    pad = kernel.size // 2
    if x.size <= pad:
        return np.full_like(x, x.mean())
    padded = np.pad(x, (pad, kernel.size - 1 - pad), mode="symmetric")
    return np.convolve(padded, kernel[::-1], mode="valid")


def _autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    n = x.size
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size)
    return np.fft.irfft(spectrum * np.conj(spectrum), size)[:max_lag]


def _pulse_part(env: np.ndarray, frame_rate: float) -> np.ndarray:
    """The onset envelope's fast part, whose periodicity is the beat: peaks widened to ~20 ms
    (a sharp click's autocorrelation peak is narrower than a frame, so whole-frame lags would miss
    it) and the slow loudness trend removed, so sections of different density do not dominate."""
    env = _smooth(env, _gaussian(0.01 * frame_rate))
    width = max(3, int(frame_rate))
    return env - _smooth(env, np.full(width, 1.0 / width))


def _pulse_autocorrelation(env: np.ndarray, frame_rate: float, max_lag: int) -> np.ndarray:
    """Autocorrelation (lags 0..max_lag-1, lag 0 = 1, all 0 for a flat envelope) of
    :func:`_pulse_part`."""
    env = _pulse_part(env, frame_rate)
    ac = _autocorrelation(env, min(max_lag, env.size))
    return ac / ac[0] if ac[0] > 0 else np.zeros_like(ac)


def estimate_tempo(envelope: np.ndarray, *, frame_rate: float = FRAME_RATE,
                   min_bpm: float = 100.0, max_bpm: float = 220.0,
                   prior_bpm: float = 150.0) -> float:
    """Global tempo (BPM) of the charting beat, from the autocorrelation of the onset envelope.

    The strongest periodicity between ``min_bpm / 2`` and ``max_bpm`` wins, its autocorrelation
    weighted by a broad log-normal preference (one octave wide) around ``prior_bpm``; a tempo
    below ``min_bpm`` is then doubled. ``min_bpm..max_bpm`` is the range of the beat rhythm-game
    charts count in: a fast song in its fast pulse (a 190 BPM thrash song is charted at 190, not
    in its 95 BPM half-time feel), a slow one in double time, so the difficulty rules of
    :mod:`analyzer.charting`, which are in beats, mean the same everywhere. The peak is refined
    with a parabola, so the tempo is not quantised to whole frames.

    Examples
    --------
    >>> env = np.zeros(3000); env[::50] = 1.0          # a click every 0.5 s at 100 frames/s
    >>> round(estimate_tempo(env, frame_rate=100.0))
    120
    """
    env = np.asarray(envelope, dtype=np.float64)
    if env.ndim != 1 or env.size < 4:
        raise NotesError("envelope too short to estimate a tempo")
    lo = max(1, int(np.floor(60.0 / max_bpm * frame_rate)))
    hi = int(np.ceil(2 * 60.0 / min_bpm * frame_rate))
    ac = _pulse_autocorrelation(env, frame_rate, hi + 2)
    hi = min(hi, ac.size - 2)
    if ac[0] <= 0 or hi <= lo + 1:
        return float(prior_bpm)
    cand = np.arange(lo, hi + 1)
    score = ac[cand] * np.exp(-0.5 * np.log2(60.0 * frame_rate / cand / prior_bpm) ** 2)
    best = int(cand[np.argmax(score)])
    lag = float(best)
    a, b, c = ac[best - 1], ac[best], ac[best + 1]  # parabolic refinement of the peak
    if a - 2 * b + c < 0:
        lag += float(np.clip(0.5 * (a - c) / (a - 2 * b + c), -0.5, 0.5))
    bpm = 60.0 * frame_rate / lag
    while bpm < min_bpm:
        bpm *= 2.0
    return bpm


def pulse_clarity(envelope: np.ndarray, *, frame_rate: float = FRAME_RATE,
                  min_bpm: float = 50.0, max_bpm: float = 220.0) -> float:
    """How clearly the onsets repeat at a beat: the highest autocorrelation of the onset
    envelope's fast part (see :func:`estimate_tempo`) at a beat period of ``min_bpm..max_bpm``,
    0..1 (1: a strictly periodic pulse).

    Songs score 0.4-0.76 (the 8 songs of ``benchmarks/chart_quality``), a 120 BPM riff 0.58,
    a song under white noise as loud as itself 0.28; stationary noise scores ~0.04-0.1
    (the chance correlations of a random envelope), as do onsets at random times.

    Examples
    --------
    >>> env = np.zeros(3000); env[::50] = 1.0          # a click every 0.5 s at 100 frames/s
    >>> pulse_clarity(env, frame_rate=100.0) > 0.9
    True
    >>> pulse_clarity(np.random.default_rng(0).random(3000), frame_rate=100.0) < 0.15
    True
    """
    env = np.asarray(envelope, dtype=np.float64)
    if env.ndim != 1:
        raise NotesError(f"envelope must be one-dimensional, got shape {env.shape}")
    lo = max(1, int(np.floor(60.0 / max_bpm * frame_rate)))
    hi = int(np.ceil(60.0 / min_bpm * frame_rate))
    ac = _pulse_autocorrelation(env, frame_rate, hi + 1) if env.size > 4 else np.zeros(0)
    return float(max(0.0, ac[lo:hi + 1].max())) if ac.size > lo else 0.0


def local_tempo(envelope: np.ndarray, *, frame_rate: float = FRAME_RATE,
                bpm: float | None = None) -> np.ndarray:
    """The tempo at each frame (BPM), for songs that change tempo.

    The onset envelope's fast part (:func:`_pulse_part`, as :func:`estimate_tempo` reads it) is
    cut into Hann windows
    of :data:`TEMPO_WINDOW_S`; each window scores every beat period within
    :data:`TEMPO_RANGE` of the song's tempo (``bpm``, else :func:`estimate_tempo`) by its
    autocorrelation at one and at two periods (two periods tell a beat from a syncopated figure:
    a 3+3+2 riff repeats every 2.67 8ths, but a bar only at whole beats). The
    autocorrelation is read from the window's power spectrum, so periods between whole frames
    score as they should (interpolating lags pulls the tempo towards whole-frame periods, ~1 %).
    The tempo is the best path through the windows' scores, each change paying
    :data:`TEMPO_CHANGE_COST` plus :data:`TEMPO_DRIFT_COST` per unit of log-tempo (Viterbi).

    Parameters
    ----------
    envelope : np.ndarray [shape=(n,)]
        Onset strength, :func:`~analyzer.onsets.onset_strength`.
    frame_rate : float
        Frames per second of ``envelope`` (Hz).
    bpm : float, optional
        The song's tempo, the middle of the range searched.

    Returns
    -------
    np.ndarray [shape=(n,)]
        BPM at each frame; constant for a song at one tempo.

    Examples
    --------
    >>> env = np.zeros(6000)                     # clicks at 120 BPM for 30 s, then 150 BPM
    >>> env[np.r_[np.arange(0, 3000, 50), np.arange(3000, 6000, 40)]] = 1.0
    >>> tempo = local_tempo(env, frame_rate=100.0)
    >>> int(round(tempo[1000])), int(round(tempo[5000]))
    (120, 150)
    """
    env = np.asarray(envelope, dtype=np.float64)
    if bpm is None:
        bpm = estimate_tempo(env, frame_rate=frame_rate)
    x = _pulse_part(env, frame_rate)
    reach = int(np.log(TEMPO_RANGE) / TEMPO_STEP)
    steps = np.arange(-reach, reach + 1)
    periods = 60.0 * frame_rate / bpm * np.exp(steps * TEMPO_STEP)
    window = np.hanning(max(4, int(TEMPO_WINDOW_S * frame_rate)))
    size = 1 << int(np.ceil(np.log2(2 * window.size)))
    # Autocorrelation at fractional lags: sum over the power spectrum of cos(2 pi f lag).
    bins = np.arange(size // 2 + 1) / size
    cosines = 0.5 * (np.cos(2 * np.pi * np.outer(periods, bins))
                     + np.cos(4 * np.pi * np.outer(periods, bins)))
    hop = max(1, int(TEMPO_HOP_S * frame_rate))
    centres = np.arange(0, max(1, x.size), hop)
    scores = np.zeros((centres.size, periods.size))
    for i, centre in enumerate(centres):
        start = centre - window.size // 2
        a, b = max(0, start), min(x.size, start + window.size)
        power = np.abs(np.fft.rfft(x[a:b] * window[a - start:b - start], size)) ** 2
        power[1:-1] *= 2.0                               # the negative frequencies
        if power.sum() > 0:
            scores[i] = cosines @ power / power.sum()
    # Viterbi over (window, period).
    moves = np.abs(steps[:, None] - steps[None, :])     # [to, from]
    change = -(TEMPO_CHANGE_COST * (moves > 0) + TEMPO_DRIFT_COST * TEMPO_STEP * moves)
    total, back = scores[0].copy(), np.zeros(scores.shape, np.int64)
    for i in range(1, centres.size):
        options = total[None, :] + change
        back[i] = np.argmax(options, axis=1)
        total = options[np.arange(steps.size), back[i]] + scores[i]
    path = np.empty(centres.size, np.int64)
    path[-1] = int(np.argmax(total))
    for i in range(centres.size - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    # Each frame takes its nearest window's tempo.
    nearest = np.clip(np.round(np.arange(env.size) / hop).astype(np.int64), 0, centres.size - 1)
    return 60.0 * frame_rate / periods[path][nearest]


def track_beats(envelope: np.ndarray, *, frame_rate: float = FRAME_RATE,
                bpm: float | None = None, tightness: float = 100.0) -> TempoMap:
    """Beat times by dynamic programming (Ellis 2007, the method of ``librosa.beat``) at the
    tempo of each moment (:func:`local_tempo`), or at a constant ``bpm``.

    Every frame's best score is its onset strength plus the best score of a previous beat between
    half and twice the local period back, penalised by ``tightness * log(gap / period)**2``; the
    beats are read back from the best frame of the last period. Beats before the first or after
    the last onset are dropped.

    Returns
    -------
    TempoMap
        The song's tempo (:func:`estimate_tempo`, or ``bpm``) and the beats; an empty ``beats``
        array when the envelope has no onsets at all.

    Examples
    --------
    >>> env = np.zeros(3000); env[20::50] = 1.0         # clicks every 0.5 s from 0.2 s
    >>> tm = track_beats(env, frame_rate=100.0)
    >>> round(tm.bpm), tm.beats[:3]
    (120, array([0.2, 0.7, 1.2]))
    """
    env = np.asarray(envelope, dtype=np.float64)
    steady = bpm is not None
    bpm = bpm if steady else estimate_tempo(env, frame_rate=frame_rate)
    # Beats span the music: from the first to the last frame that is at least a tenth as strong
    # as the envelope's loud frames (a noise floor is not music).
    active = np.flatnonzero(env >= 0.1 * np.percentile(env, 99)) if np.any(env > 0) else []
    if len(active) == 0:
        return TempoMap(float(bpm), np.zeros(0))
    tempo = (np.full(env.size, bpm) if steady
             else local_tempo(env, frame_rate=frame_rate, bpm=bpm))
    period = 60.0 * frame_rate / tempo
    # Local score: the envelope smoothed over +-1/32 of a period (timing jitter of the beat).
    width = max(1, int(round(60.0 * frame_rate / bpm / 32)))
    kernel = np.exp(-0.5 * (np.arange(-2 * width, 2 * width + 1) / width) ** 2)
    local = np.convolve(env / (env.std() or 1.0), kernel, mode="same")
    n = env.size
    # Each distinct period (a constant song has one): the gaps a beat may follow its predecessor
    # by, and their penalties, reversed to match the slice of predecessors t - g_max .. t - g_min.
    distinct, which = np.unique(period, return_inverse=True)
    rules = []
    for p in distinct:
        gaps = np.arange(max(1, int(round(p / 2))), int(round(2 * p)) + 1)
        rules.append((int(gaps[0]), int(gaps[-1]), (-tightness * np.log(gaps / p) ** 2)[::-1]))
    score = local.copy()
    back = np.full(n, -1, np.int64)
    for t in range(1, n):
        g_min, g_max, penalty = rules[which[t]]
        if t < g_min:
            continue
        start = max(0, t - g_max)
        candidates = score[start:t - g_min + 1] + penalty[penalty.size - (t - g_min + 1 - start):]
        k = int(np.argmax(candidates))
        if candidates[k] > 0:
            score[t] += candidates[k]
            back[t] = start + k
    tail = int(np.ceil(period[-1]))
    t = n - tail + int(np.argmax(score[-tail:])) if n > tail else int(np.argmax(score))
    beats = []
    while t >= 0:
        beats.append(t)
        t = back[t]
    beats = np.array(beats[::-1], dtype=np.float64)
    beats = beats[(beats >= active[0] - width) & (beats <= active[-1] + width)]
    return TempoMap(float(bpm), beats / frame_rate)


def beat_phase(times: np.ndarray, beats: np.ndarray) -> BeatPhase:
    """Each time's place between the beats around it (``beats``: at least 2, ascending, s).

    Examples
    --------
    >>> bp = beat_phase(np.array([0.25, 1.2]), np.array([0.0, 0.5, 1.0]))
    >>> bp.beat, bp.phase
    (array([0, 1]), array([0.5, 1.4]))
    """
    times = np.asarray(times, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    beat = np.clip(np.searchsorted(beats, times, side="right") - 1, 0, beats.size - 2)
    period = beats[beat + 1] - beats[beat]
    return BeatPhase(beat, (times - beats[beat]) / period, period)


def sixteenth_slots(times: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """The 16th note of the beat grid nearest each time: ``4 * i + k`` for the ``k``-th 16th
    after beat ``i`` (``k`` = 4 is the next beat's slot); -1 before the first beat or after the
    last.

    Examples
    --------
    >>> sixteenth_slots(np.array([0.1, 0.49, 0.62, 1.2]), np.array([0.0, 0.5, 1.0]))
    array([ 1,  4,  5, -1])
    """
    times = np.asarray(times, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    if beats.size < 2:
        return np.full(times.shape, -1, np.int64)
    at = beat_phase(times, beats)
    inside = (times >= beats[0]) & (times <= beats[-1])
    return np.where(inside, 4 * at.beat + np.round(at.phase * 4).astype(np.int64), -1)


def snap_to_grid(times: np.ndarray, beats: np.ndarray, *, divisions: tuple[int, ...] = (4, 3),
                 tolerance_s: float = 0.035, window_beats: int = 4, on_grid: float = 0.7,
                 inlier_s: float = 0.015, max_spread_s: float = 0.005) -> Snapped:
    """Onset and beat times moved onto the beat grid where the music is on one; elsewhere
    unchanged.

    A tracked beat sits on a frame and jitters by one; an onset too. So the grid is not the
    tracked beats subdivided but a line fitted to the onsets themselves: around each beat
    (``±window_beats``), every onset within ``tolerance_s`` of a grid point (a ``1/d`` of a beat
    for each ``d`` in ``divisions``: 16ths and 8th-note triplets by default) gives its grid
    index and time; a least-squares line through them (refitted on those within ``inlier_s``)
    is the local grid, and the subdivision whose line holds more of the onsets is the one
    played. The music is on a grid there when at least ``on_grid`` of the window's onsets are
    near a grid point and the inliers sit within ``max_spread_s`` of the line (median: about a
    detected onset's own jitter); then each onset of that beat, and the beat itself, within
    ``inlier_s`` of the line moves onto it. Rubato, a drifting tempo, free time or a wrong beat
    track leaves them where they were heard.

    Parameters
    ----------
    times : np.ndarray [shape=(n,)]
        Onset times (seconds, ascending).
    beats : np.ndarray [shape=(m,)]
        Beat times (seconds, ascending).

    Returns
    -------
    Snapped
        ``times`` [shape=(n,)] and ``beats`` [shape=(m,)], snapped where the grid holds them.
        Two onsets can land on one grid point.

    Examples
    --------
    >>> beats = np.arange(0, 20, 0.5) + np.tile([0.0, 0.006, -0.006, 0.0], 10)  # a jittery track
    >>> grid = np.arange(1, 151) * 0.125                    # 16ths at 120 BPM
    >>> times = grid + np.tile([0.004, -0.005, 0.001], 50)  # as detected: +-5 ms
    >>> float(np.abs(snap_to_grid(times, beats).times - grid).max()) < 1e-3
    True
    """
    times = np.asarray(times, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    out, out_beats = times.copy(), beats.copy()
    if beats.size < 2 or times.size == 0:
        return Snapped(out, out_beats)
    at = beat_phase(times, beats)
    grids = []
    for d in divisions:
        phase = at.phase * d                                   # in 1/d beats since the beat
        nearest = np.round(phase)
        grids.append((d, at.beat * d + nearest,                # grid index, 1/d beat units
                      np.abs(phase - nearest) * at.period / d <= tolerance_s))
    each = np.arange(beats.size - 1)
    first = np.searchsorted(at.beat, each, side="left")
    last = np.searchsorted(at.beat, each, side="right")
    lo = np.searchsorted(at.beat, each - window_beats, side="left")
    hi = np.searchsorted(at.beat, each + window_beats, side="right")
    for i in np.flatnonzero(last > first):
        best: tuple[int, np.ndarray, _GridLine] | None = None
        for d, k, near_grid in grids:
            near = near_grid[lo[i]:hi[i]]
            if near.sum() < 6 or near.mean() < on_grid:
                continue
            line = _GridLine.fit(k[lo[i]:hi[i]][near], times[lo[i]:hi[i]][near], inlier_s)
            if (line is not None and line.spread <= max_spread_s
                    and (best is None or line.inliers > best[2].inliers)):
                best = (d, k, line)
        if best is None:
            continue
        d, k, line = best
        grid = line.at(k[first[i]:last[i]])
        moved = np.abs(times[first[i]:last[i]] - grid) <= inlier_s
        out[first[i]:last[i]][moved] = grid[moved]
        if abs(line.at(i * d) - beats[i]) <= inlier_s:
            out_beats[i] = line.at(i * d)
    if np.any(np.diff(out_beats) <= 0):     # never reorders real beats; a guard all the same
        out_beats = beats.copy()
    return Snapped(out, out_beats)


@dataclass(frozen=True)
class _GridLine:
    """A local beat grid, ``time = intercept + slope * slot`` (seconds; slots in 1/d beats), and
    how well the onsets it was fitted to sit on it."""

    intercept: float
    slope: float
    spread: float       # median |residual| of the inliers, seconds
    inliers: int

    def at(self, slots):
        return self.intercept + self.slope * slots

    @classmethod
    def fit(cls, slots: np.ndarray, times: np.ndarray, inlier_s: float) -> _GridLine | None:
        """Least squares, refitted on the points within ``inlier_s`` of the first fit; None with
        fewer than 6 of them or all on one slot. A line, not a quadratic that would follow a
        drifting tempo further: a quadratic bends towards the onsets a beat-tracker slip
        mislabels."""
        intercept, slope = _least_squares_line(slots, times)
        inliers = np.abs(times - intercept - slope * slots) <= inlier_s
        if inliers.sum() < 6:
            return None
        intercept, slope = _least_squares_line(slots[inliers], times[inliers])
        if slope == 0.0:
            return None
        residual = times[inliers] - intercept - slope * slots[inliers]
        return cls(intercept, slope, float(np.median(np.abs(residual))), int(inliers.sum()))


def _least_squares_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of the least-squares line through ``(x, y)``; slope 0 if ``x`` is
    constant."""
    dx = x - x.mean()
    var = float(dx @ dx)
    slope = float(dx @ (y - y.mean())) / var if var > 0 else 0.0
    return float(y.mean() - slope * x.mean()), slope


def steady_beats(beats: np.ndarray, *, tolerance_s: float = STEADY_TOLERANCE_S,
                 share: float = STEADY_SHARE, min_beats: int = STEADY_MIN_BEATS) -> np.ndarray:
    """The beats as a charter's tempo map: a few stretches of constant tempo, not one tempo a
    beat.

    Tracked beats jitter by a frame or two and a tracker slips to the "and" for a few bars, so
    their tempo changes at every beat (an export would write hundreds of tempo changes; human
    charts of songs played to a click hold one). The beats are cut into the longest stretches
    a line fits (each holding ``share`` of its beats within ``tolerance_s``, its first and last
    among them); consecutive stretches of at least ``min_beats`` beats are one grid where one
    line through all their beats, each stretch on its beats or half a beat out (a tracker that
    moved to the "and" and back), holds ``share`` of them; the grid takes the phase most of
    them hold. Grids reach over the tracked beats around them that keep their tempo; elsewhere
    (a change of tempo, a break) the tracked beats stay. A song that speeds up steadily keeps
    many short stretches, each within ``tolerance_s`` of the beats.

    Parameters
    ----------
    beats : np.ndarray [shape=(n,)]
        Tracked beat times (seconds, ascending), e.g. :func:`track_beats`.

    Returns
    -------
    np.ndarray [shape=(m,)]
        Beat times (seconds, ascending), evenly spaced along each grid.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> beats = np.arange(200) * 0.4 + rng.uniform(-0.012, 0.012, 200)    # 150 BPM, jittery
    >>> beats[80:120] += 0.2                                  # 40 beats tracked on the "and"
    >>> steady = steady_beats(beats)
    >>> steady.size, round(60 / float(np.diff(steady).max()), 2), round(float(steady[100]), 2)
    (200, 150.0, 40.0)
    """
    beats = np.asarray(beats, dtype=np.float64)
    if beats.size < min_beats:
        return beats.copy()
    index = np.arange(beats.size, dtype=np.float64)
    stretches = _line_stretches(beats, tolerance_s, share)
    grids: list[tuple[float, float, float, float]] = []       # intercept, period, first, last (s)
    members: list[list[tuple[int, int]]] = []
    for first, last in (s for s in stretches if s[1] - s[0] >= min_beats - 1):
        if members:
            a, p, held = _grid_of(beats, members[-1] + [(first, last)], *grids[-1][:2],
                                  tolerance_s)
            if held >= share:
                members[-1].append((first, last))
                grids[-1] = (a, p, grids[-1][2], beats[last])
                continue
        intercept, period, _ = _robust_line(index[first:last + 1], beats[first:last + 1],
                                            tolerance_s)
        members.append([(first, last)])
        grids.append((intercept + period * first, period, beats[first], beats[last]))
    grids = _widened(beats, grids, tolerance_s, share)
    # Each grid's beats in place of the tracked beats it spans, the tracked beats elsewhere.
    times, spacing, outside = [], [], np.ones(beats.size, bool)
    for a, p, start, end in grids:
        k = np.arange(np.round((start - a) / p), np.round((end - a) / p) + 1)
        times.append(a + p * k)
        spacing.append(np.full(k.size, p))
        outside &= (beats < start) | (beats > end)
    # Outside the grids, each stretch of a few beats keeps one tempo (a tempo that moves on).
    rest = beats.copy()
    for first, last in stretches:
        if last - first >= 3 and outside[first:last + 1].all():
            a, p, _ = _robust_line(index[first:last + 1], beats[first:last + 1], tolerance_s)
            if p > 0:
                rest[first:last + 1] = a + p * index[first:last + 1]
    times.append(rest[outside])
    spacing.append(np.zeros(np.count_nonzero(outside)))   # tracked beats never crowd each other
    order = np.argsort(np.concatenate(times), kind="stable")
    merged = np.maximum(np.concatenate(times)[order], min(0.0, beats[0]))  # a first beat may fit
    spacing = np.concatenate(spacing)[order]                               # just before 0 s
    kept = [0]
    for i in range(1, merged.size):          # where a grid meets tracked beats or the next grid
        if merged[i] - merged[kept[-1]] >= 0.5 * max(spacing[i], spacing[kept[-1]], 1e-3):
            kept.append(i)
    return merged[kept]


def _widened(beats: np.ndarray, grids: list[tuple[float, float, float, float]],
             tolerance: float, share: float) -> list[tuple[float, float, float, float]]:
    """``grids`` (intercept, period, first and last beat, s) reaching over the tracked beats
    between them, and before the first and after the last, where those beats keep the
    neighbouring grid's tempo: ``share`` of them within ``tolerance`` of its beats or "and"s, or
    as many beats as it has there (an intro whose figure the tracker wandered in, a fill
    between two stretches). The earlier grid is tried first."""
    grids = list(grids)
    for i in range(len(grids) + 1):
        lo = grids[i - 1][3] if i > 0 else -np.inf
        hi = grids[i][2] if i < len(grids) else np.inf
        gap = beats[(beats > lo) & (beats < hi)]
        if gap.size == 0:
            continue
        for j in (i - 1, i):
            if not 0 <= j < len(grids):
                continue
            a, p, start, end = grids[j]
            halves = np.round(2.0 * (gap - a) / p)
            near = np.mean(np.abs(gap - a - halves * p / 2.0) <= tolerance) >= share
            # Or as many beats as the grid would have there, the tracker wandering around it,
            # not drifting away (a tempo that moves on).
            count = abs(gap.size - 1 - (gap[-1] - gap[0]) / p) <= max(1.0, 0.05 * gap.size)
            drift = gap.size >= 4 and abs(
                _least_squares_line(np.arange(gap.size, dtype=np.float64), gap)[1] / p - 1.0
            ) > STEADY_DRIFT
            if near or (count and not drift):
                grids[j] = (a, p, min(start, gap[0]), max(end, gap[-1]))
                break
    return grids


def _robust_line(x: np.ndarray, y: np.ndarray,
                 tolerance: float) -> tuple[float, float, np.ndarray]:
    """Intercept and slope of the line through the points within ``tolerance`` of it (least
    squares, refitted three times on the last fit's inliers), and which points those are."""
    intercept, slope = _least_squares_line(x, y)
    inliers = np.abs(y - intercept - slope * x) <= tolerance
    for _ in range(3):
        if inliers.sum() < 2:
            break
        intercept, slope = _least_squares_line(x[inliers], y[inliers])
        inliers = np.abs(y - intercept - slope * x) <= tolerance
    return intercept, slope, inliers


def _line_stretches(beats: np.ndarray, tolerance: float, share: float) -> list[tuple[int, int]]:
    """Consecutive ``(first, last)`` beat indices, each the longest stretch from ``first`` on
    that a line holds (:func:`_robust_line`: ``share`` of its beats, both ends included)."""
    index = np.arange(beats.size, dtype=np.float64)

    def holds(first: int, last: int) -> bool:
        inliers = _robust_line(index[first:last + 1], beats[first:last + 1], tolerance)[2]
        return bool(inliers.mean() >= share and inliers[0] and inliers[-1])

    stretches, first = [], 0
    while first < beats.size:
        last, step = min(first + 1, beats.size - 1), 1
        while last + step < beats.size and holds(first, last + step):   # gallop, then bisect
            last += step
            step *= 2
        bad = min(last + step, beats.size)
        while bad - last > 1:
            middle = (last + bad) // 2
            if holds(first, middle):
                last = middle
            else:
                bad = middle
        stretches.append((first, last))
        first = last + 1
    return stretches


def _grid_of(beats: np.ndarray, parts: list[tuple[int, int]], intercept: float, period: float,
             tolerance: float) -> tuple[float, float, float]:
    """One grid through the beats of ``parts`` (stretches of beat indices, each on a line) and
    the share of those beats it holds within ``tolerance``: ``(intercept, period, share)``,
    beat ``k`` at ``intercept + period * k`` seconds.

    Each stretch starts on the beat or the "and" of the grid given nearest its first beat and
    counts whole beats from there; the grid is the line through them all (:func:`_robust_line`),
    on the phase most of them hold."""
    halves = np.concatenate([np.round(2.0 * (beats[a] - intercept) / period)
                             + 2 * np.arange(b - a + 1) for a, b in parts])
    t = np.concatenate([beats[a:b + 1] for a, b in parts])
    intercept, half, held = _robust_line(halves, t, tolerance)
    on_and = np.count_nonzero(halves[held] % 2) > np.count_nonzero(held) / 2
    return intercept + half * on_and, 2.0 * half, float(held.mean())


def on_grid(times: np.ndarray, beats: np.ndarray, *, divisions: tuple[int, ...] = (4, 3),
            tolerance_s: float = 0.01) -> np.ndarray:
    """``times`` moved onto the nearest ``1/d`` of a beat (each ``d`` in ``divisions``: 16ths and
    8th-note triplets by default) where one is within ``tolerance_s``; elsewhere unchanged.

    Examples
    --------
    >>> on_grid(np.array([0.128, 0.3, 0.502]), np.array([0.0, 0.5, 1.0]))
    array([0.125, 0.3  , 0.5  ])
    """
    times = np.asarray(times, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    if beats.size < 2:
        return times.copy()
    at = beat_phase(times, beats)
    inside = (times >= beats[0]) & (times <= beats[-1])
    best, gap = times.copy(), np.full(times.shape, np.inf)
    for d in divisions:
        grid = beats[at.beat] + np.round(at.phase * d) / d * at.period
        closer = inside & (np.abs(grid - times) < gap)
        best[closer], gap[closer] = grid[closer], np.abs(grid - times)[closer]
    return np.where(gap <= tolerance_s, best, times)


def triplet_feel(times: np.ndarray, weight: np.ndarray, beats: np.ndarray, *,
                 window_beats: int = 4, tolerance_s: float = 0.02,
                 dominance: float = 2.0) -> np.ndarray:
    """Which beats the music divides in three (a shuffle, swung 8ths, 12/8): one flag per beat.

    Around each beat (``±window_beats``), the onsets' ``weight`` near a third of a beat (1/3,
    2/3) is set against their weight near a straight subdivision (1/4, 1/2, 3/4), each within
    ``tolerance_s``; a beat is in triplets where the thirds hold ``dominance`` times as much.
    A 16th note sits a 12th of a beat from a third: 29 ms at 170 BPM, outside the tolerance.

    Parameters
    ----------
    times, weight : np.ndarray [shape=(n,)]
        Onset times (s, ascending) and how much each counts (e.g. its strength).
    beats : np.ndarray [shape=(m,)]
        Beat times (s, ascending).

    Returns
    -------
    np.ndarray [shape=(m,), dtype=bool]
        True for a beat in triplets (all False with fewer than two beats).

    Examples
    --------
    >>> beats = np.arange(16) * 0.5                             # 120 BPM
    >>> swung = np.sort(np.r_[beats, beats + 1 / 3])            # on the beat and 2/3 through
    >>> bool(triplet_feel(swung, np.ones(32), beats).all())
    True
    >>> straight = np.sort(np.r_[beats, beats + 0.25])          # on the beat and the "and"
    >>> bool(triplet_feel(straight, np.ones(32), beats).any())
    False
    """
    times = np.asarray(times, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    beats = np.asarray(beats, dtype=np.float64)
    if beats.size < 2 or times.size == 0:
        return np.zeros(beats.size, bool)
    at = beat_phase(times, beats)
    phase = at.phase - np.floor(at.phase)
    tol = tolerance_s / at.period

    def near(points):
        return np.any([np.abs(phase - p) <= tol for p in points], axis=0)

    kernel = np.ones(2 * window_beats + 1)
    thirds, straight = (np.convolve(np.bincount(at.beat[mask], weight[mask], beats.size),
                                    kernel, mode="same")
                        for mask in (near((1 / 3, 2 / 3)), near((0.25, 0.5, 0.75))))
    return thirds > dominance * straight + 1e-12


def alternate_pulses(pulses: np.ndarray, times: np.ndarray, weight: np.ndarray, *,
                     window: int = 16, tolerance_s: float = 0.03) -> np.ndarray:
    """Every other pulse: of each pair ``(pulses[2j], pulses[2j + 1])`` the one whose parity
    (even or odd pulses) holds more onset ``weight`` within ``±window / 2`` pairs of ``j``.

    Which of two pulse trains is the beat (the tracked beats or the 8ths between them; every
    other tracked beat when a song is counted at half its tracked tempo): an onset's weight
    counts at the pulse within ``tolerance_s``, the strongest where several are; the decision is
    local, so a tracker that slips half a beat in one section is followed there. Ties keep the
    even pulses.

    Parameters
    ----------
    pulses : np.ndarray [shape=(m,)]
        Pulse times (seconds, ascending).
    times, weight : np.ndarray [shape=(n,)]
        Onset times (seconds, ascending) and their weights (>= 0).
    window : int
        Pairs of pulses the decision looks at around each pair.

    Returns
    -------
    np.ndarray [shape=(m // 2,)]
        One pulse per pair, seconds.

    Examples
    --------
    >>> pulses = np.arange(16) * 0.25                    # 8ths at 120 BPM
    >>> times = np.arange(8) * 0.5 + 0.25                # notes on every odd 8th
    >>> alternate_pulses(pulses, times, np.ones(8), window=4)[:3]
    array([0.25, 0.75, 1.25])
    """
    pulses = np.asarray(pulses, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    if times.shape != weight.shape:
        raise NotesError("times and weight must have the same shape")
    pairs = pulses.size // 2
    at_pulse = np.zeros(pairs * 2)
    if times.size:
        idx = np.clip(np.searchsorted(times, pulses[:pairs * 2]), 1, max(times.size - 1, 1))
        for j in (idx - 1, np.minimum(idx, times.size - 1)):
            near = np.abs(times[j] - pulses[:pairs * 2]) <= tolerance_s
            at_pulse = np.maximum(at_pulse, np.where(near, weight[j], 0.0))
    if pairs == 0:
        return pulses[:0]
    # Sums over the window centred on each pair (np.convolve's "same" is longer than the input
    # when the window is: a short song).
    kernel, lead = np.ones(window), (window - 1) // 2
    even = np.convolve(at_pulse[0::2], kernel)[lead:lead + pairs]
    odd = np.convolve(at_pulse[1::2], kernel)[lead:lead + pairs]
    return np.where(odd > even, pulses[1:pairs * 2:2], pulses[0:pairs * 2:2])

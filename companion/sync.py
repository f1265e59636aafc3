"""Lock the chart clock to the stream: stream seconds -> chart seconds, tracked continuously.

The fingerprint match gives a coarse offset (about a tenth of a second). The live onset envelope
(:class:`analyzer.features.OnsetStream`, fed by the audio thread) is then cross-correlated with
the chart's :class:`~chart_store.chart.SyncReference`; the normalised correlation peak, refined
by parabolic interpolation, gives the offset to a fraction of a frame. :class:`Synchronizer`
repeats this a few times a second and keeps a straight-line fit of recent offsets, which follows
clock drift. What it handles:

- **pause**: silence in the stream (the player stopped). The chart clock stops with the sound; when
  sound returns, both "the song had a quiet passage" and "the player paused" are searched.
- **seek / skip / replay**: the local search loses the peak; a search over the whole reference
  re-locks (a different song is the identify loop's business: it calls :meth:`reset`).
- **drift**: the fit's slope.

Offsets are ``chart_s - stream_s``. Nothing here touches audio devices or threads: the caller
gives envelope windows, so the same object runs live and offline.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from chart_store.chart import SyncReference

__all__ = ["SyncStatus", "SyncEstimate", "ClockMap", "Synchronizer", "SyncError", "ncc_peak"]


class SyncError(ValueError):
    """Inputs the synchroniser cannot use (frame rates that disagree, windows too short)."""


class SyncStatus(str, enum.Enum):
    SEARCHING = "searching"  # no lock yet (or lost it)
    LOCKED = "locked"
    PAUSED = "paused"        # the stream went silent while locked


@dataclass(frozen=True)
class SyncEstimate:
    """One measurement: at ``stream_s`` the chart was at ``stream_s + offset_s``; ``score`` is
    the normalised correlation (-1..1); ``kind`` "local", "global" or "resume"."""

    stream_s: float
    offset_s: float
    score: float
    kind: str


def _parabolic(c: np.ndarray, i: int) -> float:
    """Sub-sample position of the peak of ``c`` at integer index ``i``."""
    if 0 < i < c.size - 1:
        a, b, d = c[i - 1], c[i], c[i + 1]
        denom = a - 2 * b + d
        if denom < 0:
            return i + 0.5 * (a - d) / denom
    return float(i)


def _correlate_valid(ref: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """``out[p] = sum_i pattern[i] * ref[p + i]`` for every full overlap (NumPy FFT: scipy.signal
    takes seconds to import)."""
    n_out = ref.size - pattern.size + 1
    if pattern.size * n_out <= 200_000:  # small searches: direct is faster than an FFT
        from numpy.lib.stride_tricks import sliding_window_view
        return sliding_window_view(ref, pattern.size) @ pattern
    n_fft = 1 << int(np.ceil(np.log2(ref.size + pattern.size)))
    spectrum = np.fft.rfft(ref, n_fft) * np.conj(np.fft.rfft(pattern, n_fft))
    return np.fft.irfft(spectrum, n_fft)[:n_out]


def ncc_peak(live: np.ndarray, ref: np.ndarray, *, min_gap: int = 5,
             prior_at: float | None = None, prior_weight: float = 0.0):
    """Normalised cross-correlation of ``live`` against every position of ``ref``.

    Parameters
    ----------
    live : np.ndarray [shape=(w,)]
        The pattern.
    ref : np.ndarray [shape=(n,), n >= w]
        Where to look.
    min_gap : int
        Positions closer than this to the best one do not count as the runner-up.
    prior_at, prior_weight : float
        Where the match is expected, and how much correlation each position away from there
        costs when choosing the peak (music repeats every beat: of near-equal peaks, take the
        expected one). The score returned is the plain correlation.

    Returns
    -------
    position : float
        Sub-frame position ``p`` of the best match: ``live[i] ~ ref[p + i]``.
    score : float
        Its correlation (-1..1).
    runner_up : float
        The best correlation at least ``min_gap`` positions away (0 when none).
    """
    w = live.size
    if ref.size < w or w < 2:
        raise SyncError(f"cannot correlate {w} frames against {ref.size}")
    pattern = live - live.mean()
    norm = np.sqrt(np.dot(pattern, pattern))
    dots = _correlate_valid(ref, pattern)
    csum = np.concatenate(([0.0], np.cumsum(ref, dtype=np.float64)))
    csum2 = np.concatenate(([0.0], np.cumsum(np.square(ref, dtype=np.float64))))
    sums = csum[w:] - csum[:-w]
    energy = np.maximum(csum2[w:] - csum2[:-w] - sums * sums / w, 0.0)
    denom = norm * np.sqrt(energy)
    ncc = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 1e-9)
    positions = np.arange(ncc.size)
    if prior_at is None:
        best = int(np.argmax(ncc))
    else:
        best = int(np.argmax(ncc - prior_weight * np.abs(positions - prior_at)))
    away = np.abs(positions - best) >= min_gap
    runner_up = float(ncc[away].max()) if away.any() else 0.0
    return _parabolic(ncc, best), float(ncc[best]), runner_up


@dataclass(frozen=True)
class ClockMap:
    """Stream seconds -> chart seconds: ``offset_s`` at ``ref_s`` plus ``slope`` (drift) per
    stream second. In silence the clock runs on until ``hold_after_s`` (a quiet passage of the
    song), then stops (the player paused) until sound returns and is located."""

    ref_s: float
    offset_s: float
    slope: float = 0.0
    hold_after_s: float = float("inf")
    status: SyncStatus = SyncStatus.LOCKED

    def offset_at(self, stream_s: float) -> float:
        return self.offset_s + self.slope * (stream_s - self.ref_s)

    def chart_time(self, stream_s: float) -> float:
        stream_s = min(stream_s, self.hold_after_s)
        return stream_s + self.offset_at(stream_s)


class Synchronizer:
    """Maps stream time to chart time for one chart.

    Parameters
    ----------
    reference : SyncReference
        The chart's onset envelope.
    window_s : float
        Seconds of live envelope correlated per update (longer: surer, slower to follow seeks).
    search_s : float
        Half-width of the local search around the current offset, seconds.
    min_score : float
        Correlation a local peak needs to count as a measurement.
    min_margin : float
        How far a global peak must beat the runner-up to be trusted (repeated sections tie).
    fit_s : float
        Seconds of recent measurements in the drift fit.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> env = rng.random(3000).astype(np.float32) ** 8          # a sparse "onset" envelope
    >>> sync = Synchronizer(SyncReference(env, 100.0))
    >>> live = env[1234:1834]                                    # stream starts at chart 12.34 s
    >>> est = sync.update(live, end_frame=600)
    >>> round(sync.chart_time(6.0), 2)
    18.34
    """

    #: Seconds of silence the clock runs through before it counts as a pause.
    PAUSE_GRACE_S = 1.0
    #: Seconds of recent envelope checked against the prediction at each update.
    CHECK_S = 1.5
    #: Half-width of the search around a fingerprint's offset (its error is about 0.1 s).
    COARSE_RADIUS_S = 0.5
    #: Correlation enough to lock there (the fingerprint already said where: a weak fit near
    #: it beats no lock).
    COARSE_MIN_SCORE = 0.25
    #: Correlation a peak loses per second away from the expected offset (a beat at 170 BPM,
    #: 0.35 s away, costs 0.18).
    PRIOR_PER_S = 0.5
    #: Half-width of the precise measurement while locked (seconds): less than half the
    #: shortest beat subdivision, so it cannot hop to a neighbouring beat.
    TRACK_RADIUS_S = 0.03
    #: Two global searches agree on a jump when their offsets are this close (seconds).
    AGREE_S = 0.02
    #: Seconds of recent envelope searched everywhere at each update while locked.
    JUMP_WINDOW_S = 3.0
    #: Once the fit here has dropped, the audio since about then (plus this lead, seconds: a
    #: drop shows some time after the jump) is also searched alone, at least
    #: :attr:`JUMP_SHORT_MIN_S` of it: unmixed with what played before the jump, it places
    #: itself sooner than the whole window does.
    JUMP_LEAD_S = 0.75
    JUMP_SHORT_MIN_S = 1.0
    #: How much better (correlation) another place must fit the recent audio to jump there.
    JUMP_MARGIN = 0.1
    #: ... and the fit here must have fallen below this share of its recent median,
    JUMP_RATIO = 0.75
    #: ... and the lock must have been checked this many times already (a second of updates).
    SETTLE_CHECKS = 4
    #: ... and the new place must fit at least this well (a passage with little to go on fits
    #: many places weakly).
    JUMP_MIN_SCORE = 0.6
    #: Peaks closer than this (seconds) are one place (beats of the same passage).
    PLACE_S = 0.5
    #: How late a silence or the sound after it may be noticed (seconds).
    EDGE_SLACK_S = 0.8
    #: Seconds of sound after a silence before re-locating (a shorter window is ambiguous).
    RESUME_AFTER_S = 1.0

    def __init__(self, reference: SyncReference, *, window_s: float = 6.0, search_s: float = 0.3,
                 min_score: float = 0.45, min_margin: float = 0.08, fit_s: float = 20.0):
        self.frame_rate = float(reference.frame_rate)
        self.window = int(round(window_s * self.frame_rate))
        self.search = int(round(search_s * self.frame_rate))
        self.min_score, self.min_margin, self.fit_s = min_score, min_margin, fit_s
        # Zero padding lets windows hang over either end of the recording.
        self._pad = self.window + self.search + 1
        self._ref = np.concatenate([np.zeros(self._pad), reference.envelope.astype(np.float64),
                                    np.zeros(self._pad)])
        self.reset()

    def reset(self) -> None:
        """Forget every measurement (a new song, or the listener says the lock is wrong)."""
        self.status = SyncStatus.SEARCHING
        self._points: list[tuple[float, float, float]] = []  # (stream_s, offset_s, score)
        self._coarse: float | None = None
        self._miss_since: float | None = None
        self._jump_candidate: SyncEstimate | None = None
        self._tracked = 0  # checks since the lock was made
        self._here_scores: list[float] = []  # recent fits of the last seconds where we are
        self._drop_since: float | None = None  # stream s the fit here first fell
        self._silence_start: float | None = None
        self._sound_since: float | None = None
        self.last: SyncEstimate | None = None

    # -- inputs -------------------------------------------------------------------------------
    def set_coarse(self, offset_s: float) -> None:
        """A coarse offset (from the fingerprint match): while searching, only its
        neighbourhood (:attr:`COARSE_RADIUS_S`) is searched."""
        self._coarse = float(offset_s)

    def update(self, live: np.ndarray, *, end_frame: int, silent: bool = False
               ) -> SyncEstimate | None:
        """Measure the offset from the live envelope frames ``[end_frame - len(live), end_frame)``.

        ``silent`` says the stream has been silent lately (below the audible floor). Returns the
        accepted measurement, or None.
        """
        stream_s = end_frame / self.frame_rate
        if silent:
            if self.status is SyncStatus.LOCKED:
                self._silence_start = stream_s
                self.status = SyncStatus.PAUSED
            self._sound_since = None
            return None
        live = np.asarray(live, dtype=np.float64)[-self.window:]
        if live.size < min(self.window, 2 * self.frame_rate) or not np.any(live):
            return None
        start_frame = end_frame - live.size
        estimate = None
        if self.status is SyncStatus.PAUSED:
            estimate = self._resume(live, start_frame, stream_s)
        elif self.status is SyncStatus.LOCKED:
            estimate = self._track(live, start_frame, stream_s)
        elif self._coarse is not None:
            # Music repeats itself: near the fingerprint's offset, not the best peak anywhere.
            estimate = self._local(live, start_frame, self._coarse,
                                   int(self.COARSE_RADIUS_S * self.frame_rate), "local",
                                   min_score=self.COARSE_MIN_SCORE)
        else:
            estimate = self._global(live, start_frame)
        if estimate is not None:
            self._accept(estimate)
        return estimate

    # -- outputs ------------------------------------------------------------------------------
    @property
    def locked(self) -> bool:
        return self.status is SyncStatus.LOCKED

    @property
    def jump_since_s(self) -> float | None:
        """While locked but failing the checks: about when the stream jumped (stream s)."""
        if self._miss_since is None:
            return None
        return self._miss_since - self.JUMP_WINDOW_S / 2

    def clock_map(self) -> "ClockMap | None":
        """An immutable snapshot of the current mapping (hand it to other threads); None
        before any lock."""
        if not self._points:
            return None
        t, d, _ = np.array(self._points).T
        if t.size >= 6 and t[-1] - t[0] >= 4.0:
            slope, intercept = np.polyfit(t - t[-1], d, 1)
            slope = float(np.clip(slope, -0.01, 0.01))  # clock drift is parts per thousand at most
        else:
            slope, intercept = 0.0, float(np.median(d[-3:]))
        paused = self.status is SyncStatus.PAUSED and self._silence_start is not None
        hold = self._silence_start + self.PAUSE_GRACE_S if paused else float("inf")
        return ClockMap(float(t[-1]), float(intercept), slope, hold, self.status)

    def offset_at(self, stream_s: float) -> float | None:
        """Offset (chart_s - stream_s) the fit gives at ``stream_s``; None before any lock."""
        clock = self.clock_map()
        return None if clock is None else clock.offset_at(stream_s)

    def chart_time(self, stream_s: float) -> float | None:
        """Chart seconds at stream second ``stream_s``; None if unknown (see :class:`ClockMap`)."""
        clock = self.clock_map()
        return None if clock is None else clock.chart_time(stream_s)

    # -- internals ----------------------------------------------------------------------------
    def _ref_slice(self, start: int, length: int) -> np.ndarray:
        start = min(max(start + self._pad, 0), self._ref.size - length)
        return self._ref[start:start + length]

    def _local(self, live, start_frame, offset_s, radius, kind, *, prior=True, inside=False,
               min_score=None):
        """Search ``radius`` frames around ``offset_s``, preferring peaks near it (``prior``);
        ``inside``: a best peak on the edge of the range is no measurement."""
        if offset_s is None:
            return None
        centre = start_frame + offset_s * self.frame_rate
        first = int(np.floor(centre)) - radius
        lo = min(max(first + self._pad, 0), self._ref.size - live.size - 2 * radius - 1)
        ref = self._ref[lo:lo + live.size + 2 * radius + 1]
        position, score, _ = ncc_peak(live, ref, prior_at=centre + self._pad - lo if prior
                                      else None, prior_weight=self.PRIOR_PER_S / self.frame_rate)
        if score < (self.min_score if min_score is None else min_score):
            return None
        if inside and not 1 <= position <= ref.size - live.size - 1:
            return None
        chart_start = (lo - self._pad + position) / self.frame_rate
        return self._estimate(start_frame, live.size, chart_start, score, kind)

    def _track(self, live, start_frame, stream_s):
        """While locked: is the recent audio better placed elsewhere (a seek, a skip)? Music
        repeats itself, so a jump needs a clearly better place, found twice in a row. Otherwise
        measure precisely, close to the prediction (drift is slow: never a beat away)."""
        offset = self.offset_at(stream_s)
        radius = int(np.ceil(self.TRACK_RADIUS_S * self.frame_rate))
        lock_score = max(p[2] for p in self._points)
        if self._coarse is not None and lock_score < self.min_score:
            # Locked on a weak fit to the first seconds near the fingerprint's offset (a
            # neighbouring onset can win there): redo it as the window grows, until a fit is
            # good enough to track.
            redo = self._local(live, start_frame, self._coarse,
                               int(self.COARSE_RADIUS_S * self.frame_rate), "local",
                               min_score=self.COARSE_MIN_SCORE)
            if (redo is not None and redo.score > lock_score
                    and abs(redo.offset_s - offset) > self.TRACK_RADIUS_S):
                return redo
        recent = live[-int(self.JUMP_WINDOW_S * self.frame_rate):]
        recent_start = start_frame + live.size - recent.size
        here = self._local(recent, recent_start, offset, radius, "local")
        here_score = here.score if here is not None else 0.0
        # Songs repeat whole passages, which fit as well as the one playing: look elsewhere only
        # when the recent audio fits here clearly worse than it has lately. A fresh lock's first
        # checks say little about that: until a second of them is in, stay where the lock (the
        # fingerprint's neighbourhood) put us.
        self._tracked += 1
        typical = float(np.median(self._here_scores)) if self._here_scores else 1.0
        best = None
        if self._tracked > self.SETTLE_CHECKS and here_score < self.JUMP_RATIO * typical:
            if self._drop_since is None:
                self._drop_since = stream_s
            best = self._global(recent, recent_start)
            since = stream_s - self._drop_since + self.JUMP_LEAD_S
            short = int(max(since, self.JUMP_SHORT_MIN_S) * self.frame_rate)
            if short < recent.size:
                after = self._global(recent[-short:], recent_start + recent.size - short)
                if after is not None and (best is None or after.score > best.score):
                    best = after
        else:
            self._drop_since = None
        steady = self._local(live, start_frame, offset, radius, "local", inside=True)
        if (best is not None and abs(best.offset_s - offset) > self.search / self.frame_rate
                and best.score >= self.JUMP_MIN_SCORE
                and best.score > here_score + self.JUMP_MARGIN):
            if self._miss_since is None:
                self._miss_since = stream_s
            previous, self._jump_candidate = self._jump_candidate, best
            # Taken when two searches in a row agree.
            if previous is not None and abs(best.offset_s - previous.offset_s) <= self.AGREE_S:
                return best
            return None
        self._jump_candidate = None
        if here is not None:
            self._here_scores.append(here.score)
            del self._here_scores[:-8]
        if steady is None and here is None:
            if self._miss_since is None:
                self._miss_since = stream_s
            return None
        self._miss_since = None
        return steady

    def _global(self, live, start_frame):
        # Peaks a beat or two from the best are the same place for this test: the runner-up
        # that counts is another passage.
        position, score, runner_up = ncc_peak(live, self._ref,
                                              min_gap=int(self.PLACE_S * self.frame_rate))
        if score < self.min_score or score - runner_up < self.min_margin:
            return None
        chart_start = (position - self._pad) / self.frame_rate
        return self._estimate(start_frame, live.size, chart_start, score, "global")

    def _estimate(self, start_frame, size, chart_start, score, kind):
        # A window measures its mean offset: stamp it at the window's centre, so drift is fitted
        # without a lag of half a window.
        stream_start = start_frame / self.frame_rate
        return SyncEstimate(stream_start + size / (2 * self.frame_rate),
                            chart_start - stream_start, score, kind)

    def _resume(self, live, start_frame, stream_s):
        """After silence: the song either went on (offset unchanged) or was paused (offset
        reduced by the silence); search the range between, else everywhere."""
        if self._sound_since is None:
            self._sound_since = stream_s
        heard = stream_s - self._sound_since
        if heard < self.RESUME_AFTER_S:
            return None
        before = self.offset_at(self._silence_start)
        paused_for = self._sound_since - self._silence_start
        # Only the frames since the sound came back (and one update before) say where it is now.
        sound = live[-min(live.size, int((heard + 0.3) * self.frame_rate)):]
        sound_start = start_frame + live.size - sound.size
        # The silence began up to a detection delay before it was reported, and the sound came
        # back up to an update before it was seen: the pause may be that much longer.
        low, high = before - paused_for - self.EDGE_SLACK_S, before
        radius = int(np.ceil((high - low) / 2 * self.frame_rate)) + self.search
        estimate = self._local(sound, sound_start, (low + high) / 2, radius, "resume",
                               prior=False)
        if estimate is None and sound.size >= self.CHECK_S * 2 * self.frame_rate:
            estimate = self._global(sound, sound_start)  # not where it was: a seek while paused
        if estimate is not None:
            self._silence_start = self._sound_since = None
        return estimate

    def _accept(self, estimate: SyncEstimate) -> None:
        current = self.offset_at(estimate.stream_s) if self._points else None
        if current is not None and abs(estimate.offset_s - current) > 0.05:
            self._points.clear()  # a jump (seek, skip, pause): the old line no longer holds
        if not self._points:
            self._tracked = 0
        self._points.append((estimate.stream_s, estimate.offset_s, estimate.score))
        while self._points and self._points[0][0] < estimate.stream_s - self.fit_s:
            self._points.pop(0)
        self._miss_since = self._drop_since = None
        self._jump_candidate = None
        self.status = SyncStatus.LOCKED
        self.last = estimate

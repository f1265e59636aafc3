"""Lock the chart clock to the stream: stream seconds -> chart seconds, tracked continuously.

The fingerprint match gives a coarse offset (about a tenth of a second). The live onset envelope
(:class:`analyzer.features.OnsetStream`, fed on the control thread from the capture ring) is
then cross-correlated with
the chart's :class:`~chart_store.chart.SyncReference`; the normalised correlation peak, refined
by parabolic interpolation, gives the offset to a fraction of a frame. :class:`Synchronizer`
repeats this a few times a second and keeps a straight-line fit of recent offsets, which follows
clock drift. What it handles:

- **pause**: silence in the stream (the player stopped). The chart clock stops with the sound; when
  sound returns, both "the song had a quiet passage" and "the player paused" are searched, close
  to where each puts the song when the caller says exactly when the silence began and ended;
  sound from neither place (a seek while paused) is placed everywhere, by the bands first.
- **seek / skip / replay**: the fit of the last 1.5 s at the prediction falls below its usual
  level (:attr:`Synchronizer.jump_since_s` then says about when the jump was: the caller asks
  the identify loop to fingerprint the audio since); the audio since about then is searched over
  the whole reference, in windows from 1 s to all of it, and two updates whose searches agree
  re-lock. When the reference has coarse band energies (harmony and timbre, 10 a second) and
  the caller gives the live ones, they search instead: a second of onset envelope
  sampled at a fraction of a frame from the reference's grid fits many places (a beat is a
  beat), its spectrum one; the envelope then refines the place found. Where neither can place
  it (a passage that repeats, or with little rhythm and no bands), the first fingerprint of the
  audio since the jump (:meth:`hint`, about 3 s after it) does, when the envelope fits there
  better than at the old place, however close (a short skip).
  A different song is the identify loop's business: it calls :meth:`reset`.
- **repeated passages**: a few seconds cannot tell two copies of a riff apart, so every second
  the audio since the lock (up to 10 s) is searched everywhere too (with bands, a place found
  there must fit them better too: the envelope of a passage a fraction of a frame off the
  reference's grid fits it poorly, and another passage's beat can fit it better), and the
  fingerprint's own rechecks (:meth:`hint`) move a lock that sits on the wrong copy (less
  than a second away: two rechecks in a row must say so; with bands, only to a copy whose
  music fits about as well: Chromaprint can name the same riff under other chords).
- **drift**: the fit's slope.

Offsets are ``chart_s - stream_s``. Nothing here touches audio devices or threads: the caller
gives envelope windows, so the same object runs live and offline.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from chart_store.chart import SyncReference

__all__ = ["SyncStatus", "SyncEstimate", "ClockMap", "Synchronizer", "SyncError", "ncc_peak",
           "BandMatcher"]


class SyncError(ValueError):
    """Inputs the synchroniser cannot use (frame rates that disagree, windows too short)."""


class SyncStatus(str, enum.Enum):
    SEARCHING = "searching"  # no lock yet (or lost it)
    LOCKED = "locked"
    PAUSED = "paused"        # the stream went silent while locked


@dataclass(frozen=True)
class SyncEstimate:
    """One measurement: at ``stream_s`` the chart was at ``stream_s + offset_s``; ``score`` is
    the normalised correlation (-1..1); ``kind`` "local", "global" or "resume"; ``span_s`` the
    seconds of audio measured (centred on ``stream_s``)."""

    stream_s: float
    offset_s: float
    score: float
    kind: str
    span_s: float = 0.0


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
             prior_at: float | None = None, prior_weight: float = 0.0,
             exclude: tuple[float, float] | None = None):
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
    exclude : (float, float), optional
        Positions from..to that are neither the best nor the runner-up (the place already
        known, when looking for another).

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
    return _pick_peak(ncc, min_gap=min_gap, prior_at=prior_at, prior_weight=prior_weight,
                      exclude=exclude)


def _pick_peak(ncc: np.ndarray, *, min_gap: int, prior_at=None, prior_weight=0.0, exclude=None):
    """:func:`ncc_peak`'s choice of the peak and runner-up among correlations ``ncc``."""
    positions = np.arange(ncc.size)
    if exclude is not None:
        ncc[(positions > exclude[0]) & (positions < exclude[1])] = -1.0
    if prior_at is None:
        best = int(np.argmax(ncc))
    else:
        best = int(np.argmax(ncc - prior_weight * np.abs(positions - prior_at)))
    away = np.abs(positions - best) >= min_gap
    runner_up = float(ncc[away].max()) if away.any() else 0.0
    return _parabolic(ncc, best), float(ncc[best]), runner_up


class BandMatcher:
    """Normalised correlation of a few rows of coarse band energies against every place of a
    reference (:attr:`chart_store.chart.SyncReference.bands`), every half row.

    Each row loses its mean over bands first (the spectrum's shape, not its loudness), and
    each band its mean over the window compared (a codec's or an equaliser's tilt); the
    correlation is then taken over the whole patch. A row averages a tenth of a second, and
    music that changes faster fits its own place poorly half a row off the reference's grid:
    the places between rows are compared with the mean of the rows either side.

    Parameters
    ----------
    bands : np.ndarray [shape=(m, n_bands)]
        The reference rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.integers(0, 200, size=(300, 24))
    >>> scores = BandMatcher(ref).scores(ref[120:135] + 3)   # louder, the same spectra
    >>> int(np.argmax(scores)) / 2, round(float(scores.max()), 2)   # (in rows)
    (120.0, 1.0)
    """

    def __init__(self, bands: np.ndarray):
        self.ref = _row_contrast(bands)
        self._grids = [_Rows(self.ref), _Rows((self.ref[:-1] + self.ref[1:]) / 2)]

    @property
    def n_bands(self) -> int:
        return self.ref.shape[1]

    def scores(self, pattern: np.ndarray) -> np.ndarray:
        """Correlation (-1..1) of ``pattern`` (shape (w, n_bands), 2 <= w < m) at every half
        row ``p / 2`` of the reference (``pattern[i] ~ ref[p / 2 + i]``), shape
        (2 * (m - w) + 1,)."""
        w = pattern.shape[0]
        if not 2 <= w < self.ref.shape[0] or pattern.shape[1] != self.n_bands:
            raise SyncError(f"cannot correlate {pattern.shape} band rows against "
                            f"{self.ref.shape}")
        x = _row_contrast(pattern)
        x -= x.mean(axis=0)
        whole, half = (grid.scores(x) for grid in self._grids)
        out = np.empty(whole.size + half.size)
        out[0::2], out[1::2] = whole, half
        return out

    def fit_at(self, pattern: np.ndarray, position: float) -> float:
        """Correlation of ``pattern`` at a fractional row ``position`` of the reference, its
        rows interpolated there; 0 where it does not lie wholly inside."""
        w = pattern.shape[0]
        first = int(np.floor(position))
        frac = position - first
        if first < 0 or first + w + 1 > self.ref.shape[0]:
            return 0.0
        patch = (1 - frac) * self.ref[first:first + w] + frac * self.ref[first + 1:first + w + 1]
        patch -= patch.mean(axis=0)
        x = _row_contrast(pattern)
        x -= x.mean(axis=0)
        denom = np.sqrt(np.sum(patch * patch) * np.sum(x * x))
        return float(np.sum(patch * x) / denom) if denom > 1e-9 else 0.0


class _Rows:
    """One grid of reference rows and the running sums its correlations need."""

    def __init__(self, rows: np.ndarray):
        self.rows = rows
        zero = np.zeros((1, rows.shape[1]))
        self._csum = np.concatenate([zero, np.cumsum(rows, axis=0)])
        self._csum2 = np.concatenate([zero, np.cumsum(np.square(rows), axis=0)])

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Correlation of ``x`` (band means removed) at every row."""
        from numpy.lib.stride_tricks import sliding_window_view

        w = x.shape[0]
        dots = np.einsum("pbw,wb->p", sliding_window_view(self.rows, w, axis=0), x)
        sums = self._csum[w:] - self._csum[:-w]
        energy = np.maximum(self._csum2[w:] - self._csum2[:-w] - sums * sums / w, 0.0).sum(axis=1)
        denom = np.sqrt(energy * np.sum(x * x))
        return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 1e-9)


def _row_contrast(bands: np.ndarray) -> np.ndarray:
    x = np.asarray(bands, dtype=np.float64)
    return x - x.mean(axis=1, keepdims=True)


@dataclass(frozen=True)
class _Hint:
    """A fingerprint's word (:meth:`Synchronizer.hint`): the audio from ``from_s`` to
    ``stream_s`` (stream seconds) sits at ``offset_s`` (chart_s - stream_s)."""

    offset_s: float
    stream_s: float
    from_s: float


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
    #: Seconds of recent envelope whose fit at the prediction is watched: short, so that a
    #: seek shows within half of it.
    CHECK_S = 1.5
    #: The fit there falling below this share of its usual level (the median of recent healthy
    #: checks) puts the lock in doubt: the last :attr:`JUMP_SHORT_MIN_S`, and longer windows
    #: up to since shortly before (:attr:`JUMP_LEAD_S`) and at most :attr:`JUMP_WINDOW_S`,
    #: are then searched everywhere (audio from before the jump only blurs the search).
    JUMP_RATIO = 0.75
    #: ... or below this, whatever is usual (a lock that never fitted).
    DOUBT_BELOW = 0.3
    JUMP_LEAD_S = 0.75
    JUMP_SHORT_MIN_S = 1.0
    JUMP_WINDOW_S = 3.0
    #: How much better (correlation) another place must fit the same audio to jump there ...
    JUMP_MARGIN = 0.1
    #: ... and the new place must fit at least this well (a passage with little to go on fits
    #: many places weakly) ...
    JUMP_MIN_SCORE = 0.6
    #: ... and a new lock must have been checked this many times (its first checks say little
    #: about the usual fit).
    SETTLE_CHECKS = 4
    #: Music repeats whole passages, and a few seconds cannot tell two copies apart: every
    #: :attr:`RECHECK_EVERY_S` the audio since the lock (up to :attr:`RECHECK_WINDOW_S`) is
    #: searched everywhere, so a lock on the wrong copy moves once the copies differ.
    RECHECK_EVERY_S = 1.0
    RECHECK_WINDOW_S = 10.0
    #: A place found for the audio since a jump waits this long (seconds) for a later search
    #: to agree.
    CANDIDATE_S = 1.5
    #: Seconds at the edge of a discontinuity (a start, a seek) whose onsets are the edge's.
    EDGE_S = 0.1
    #: A fingerprint's offset (:meth:`hint`) farther than this from the lock's disagrees
    #: (seconds; its error is about a tenth of that) when it heard the audio of the place
    #: locked (from at most :attr:`JUMP_LEAD_S` before the jump or start there) ...
    HINT_AGREE_S = 1.0
    #: ... (seconds a fingerprint hears, when the caller does not say).
    HINT_AFTER_S = 3.0
    #: Closer than :attr:`HINT_AGREE_S` but farther than this (seconds: more than one
    #: fingerprint item, 0.124 s), a fingerprint disagrees only when the one before said the
    #: same within :attr:`HINT_SAME_S` (a short seek: a single match's error is up to an item).
    HINT_NEAR_S = 0.15
    HINT_SAME_S = 0.1
    #: Peaks closer than this (seconds) are one place (beats of the same passage).
    PLACE_S = 0.5
    #: Half-width of the search around each guess when sound comes back after a silence
    #: (seconds): the silence's edges are known to a few ms, a fade or a codec smears them.
    RESUME_RADIUS_S = 0.08
    #: Seconds of sound after a silence before re-locating near where it stopped; the search
    #: everywhere (a seek while paused) waits for :attr:`JUMP_SHORT_MIN_S` more.
    RESUME_AFTER_S = 0.8
    #: How late a silence or the sound after it may be noticed when the caller does not say
    #: exactly when (seconds).
    EDGE_SLACK_S = 0.8
    #: With the reference's coarse bands (:meth:`update`'s ``bands``), the audio since a jump is
    #: placed by them: the onset envelope of a second of music at a fraction of a frame from
    #: the reference's grid fits many places (a beat is a beat), its spectrum one. Fewer rows
    #: than this (0.8 s at 10 Hz) are not searched (a second of audio since a jump has 9 or
    #: 10 whole rows) ...
    BAND_MIN_ROWS = 8
    #: ... the place found there is refined by the envelope within this many seconds (the
    #: bands place it to a few ms) ...
    BAND_REFINE_S = 0.05
    #: ... and the place locked, to this many seconds (a row), is not another place: a skip
    #: of a fifth of a second is a jump to place.
    BAND_HERE_S = 0.1
    #: A fingerprint (:meth:`hint`) moves the lock only to a place the bands fit at most this
    #: much worse than the best place they find: Chromaprint can name another copy of a riff
    #: (the same rhythm, other chords or voices over it), while true copies fit them alike.
    HINT_BAND_SLACK = 0.03

    def __init__(self, reference: SyncReference, *, window_s: float = 6.0, search_s: float = 0.3,
                 min_score: float = 0.45, min_margin: float = 0.08, fit_s: float = 20.0):
        self.frame_rate = float(reference.frame_rate)
        # Coarse bands, when the chart has them at a whole number of envelope frames per row.
        self.band_rate: float | None = None
        self.band_pool = 0
        self._bands: BandMatcher | None = None
        if reference.bands is not None and reference.bands.shape[0] > self.BAND_MIN_ROWS:
            pool = self.frame_rate / reference.band_rate
            if round(pool) >= 1 and abs(pool - round(pool)) < 1e-9:
                self.band_rate, self.band_pool = float(reference.band_rate), int(round(pool))
                self._bands = BandMatcher(reference.bands)
        self._live_bands: np.ndarray | None = None  # this update's rows
        self._bands_end = 0  # stream row one past the last of them
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
        # Places the audio since a jump fitted clearly best, with the stream s of the update
        # that found each: two updates that agree re-lock there.
        self._candidates: list[tuple[float, SyncEstimate]] = []
        self._tracked = 0  # checks since the lock was made
        self._lock_from = 0.0  # stream s of the first audio the lock rests on
        self._place_from = 0.0  # stream s the audio at the lock's place starts (a jump, a start)
        self._next_recheck = 0.0
        self._here_scores: list[float] = []  # recent healthy fits of the last CHECK_S here
        self._doubt_since: float | None = None  # stream s the fit here first fell
        self._hints: list[_Hint] = []  # the last two fingerprints (hint), oldest first
        self._hint_new = False  # the last one is not yet acted on
        self._confirmed = False  # a fingerprint of the audio here agreed, and no doubt since
        self._silence_start: float | None = None
        self._silence_exact = False
        self._resume_found: SyncEstimate | None = None  # where the bands put the sound after one
        self._sound_since: float | None = None
        self.last: SyncEstimate | None = None

    # -- inputs -------------------------------------------------------------------------------
    def set_coarse(self, offset_s: float) -> None:
        """A coarse offset (from the fingerprint match): while searching, only its
        neighbourhood (:attr:`COARSE_RADIUS_S`) is searched."""
        self._coarse = float(offset_s)

    def hint(self, offset_s: float, *, stream_s: float, from_s: float | None = None) -> None:
        """The fingerprint's offset at ``stream_s`` (the identify loop's recheck) of the audio
        since ``from_s`` (default: the last :attr:`HINT_AFTER_S`). Chromaprint hears harmony
        where the envelope hears only rhythm: it tells apart copies of a riff that the envelope
        cannot, so a lock it contradicts moves to where it points when the envelope fits there
        too, and a jump it contradicts is not taken. While the lock is in doubt (a seek), a
        fingerprint of the audio since the jump is the surest word on where it went."""
        from_s = stream_s - self.HINT_AFTER_S if from_s is None else from_s
        self._hints = [*self._hints[-1:], _Hint(float(offset_s), float(stream_s), float(from_s))]
        self._hint_new = True

    def update(self, live: np.ndarray, *, end_frame: int, silent: bool = False,
               since_s: float | None = None,
               bands: np.ndarray | None = None) -> SyncEstimate | None:
        """Measure the offset from the live envelope frames ``[end_frame - len(live), end_frame)``.

        ``silent`` says the stream has been silent lately (below the audible floor); ``since_s``,
        when the caller knows it, the stream second that silence began (``silent``) or that the
        sound after one came back (not ``silent``). ``bands``, when the reference has them
        (:attr:`band_rate` is not None): the latest rows of the live coarse bands, the same
        kind at the same rate (shape (r, n_bands)), the last one ending with the last whole row
        of frames (row ``j`` is frames ``j * band_pool`` to ``(j + 1) * band_pool - 1``).
        Returns the accepted measurement, or None.
        """
        stream_s = end_frame / self.frame_rate
        self._live_bands = None
        if bands is not None and self._bands is not None:
            bands = np.asarray(bands)
            if bands.ndim != 2 or bands.shape[1] != self._bands.n_bands:
                raise SyncError(f"live bands of shape {bands.shape}; the reference has "
                                f"{self._bands.n_bands} bands")
            self._live_bands, self._bands_end = bands, end_frame // self.band_pool
        if silent:
            if self.status is SyncStatus.LOCKED:
                self._silence_start = stream_s if since_s is None else since_s
                self._silence_exact = since_s is not None
                self.status = SyncStatus.PAUSED
            self._sound_since = self._resume_found = None
            return None
        if self.status is SyncStatus.PAUSED and self._sound_since is None:
            self._sound_since = stream_s if since_s is None else max(since_s, self._silence_start)
        live = np.asarray(live, dtype=np.float64)[-self.window:]
        if live.size < min(self.window, 2 * self.frame_rate) or not np.any(live):
            if self.status is not SyncStatus.PAUSED or live.size < self.frame_rate / 2:
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
    def confirmed(self) -> bool:
        """Whether a fingerprint of the audio at the lock's place (:meth:`hint`) agreed with
        it, and the envelope has not doubted it since: fingerprints that now disagree are
        confusing copies of a passage, not hearing a jump."""
        return self._confirmed

    @property
    def jump_since_s(self) -> float | None:
        """While the lock is in doubt: about when the stream jumped (stream s)."""
        if self._doubt_since is None:
            return None
        return self._doubt_since - self.JUMP_LEAD_S

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
        """While locked: has the stream jumped (a seek, a skip), or does the audio since the
        lock fit another copy of a repeated passage better? Music repeats itself, so a jump
        needs a clearly better place, found by two updates (or the fingerprint's word, see
        :meth:`_follow_hints`). Otherwise measure precisely, close to the prediction (drift is
        slow: never a beat away)."""
        fr = self.frame_rate
        offset = self.offset_at(stream_s)
        end_frame = start_frame + live.size
        lock_score = max(p[2] for p in self._points)
        if self._coarse is not None and lock_score < self.min_score:
            # Locked on a weak fit to the first seconds near the fingerprint's offset (a
            # neighbouring onset can win there): redo it as the window grows, until a fit is
            # good enough to track.
            redo = self._local(live, start_frame, self._coarse,
                               int(self.COARSE_RADIUS_S * fr), "local",
                               min_score=self.COARSE_MIN_SCORE)
            if (redo is not None and redo.score > lock_score
                    and abs(redo.offset_s - offset) > self.TRACK_RADIUS_S):
                return redo
        recent = live[-int(self.CHECK_S * fr):]
        here_score = self._fit(recent, end_frame - recent.size, offset)
        self._tracked += 1
        settled = self._tracked > self.SETTLE_CHECKS
        typical = float(np.median(self._here_scores)) if settled and self._here_scores else 0.0
        if here_score < max(self.JUMP_RATIO * typical, self.DOUBT_BELOW):
            if self._doubt_since is None:
                self._doubt_since = stream_s
                self._confirmed = False
        else:
            self._doubt_since = None
            self._here_scores.append(here_score)
            del self._here_scores[:-8]
        patterns = []  # seconds of the latest audio to place
        if self._doubt_since is not None:
            # The jump happened shortly before the fit fell; where exactly is unknown, so try
            # the windows that may start after it, every half second, and all the audio since
            # (a passage the first seconds cannot place, or places twice, may place itself later).
            since = min(stream_s - self._doubt_since + self.JUMP_LEAD_S, live.size / fr)
            patterns += list(np.arange(self.JUMP_SHORT_MIN_S,
                                       max(min(since, self.JUMP_WINDOW_S), self.JUMP_SHORT_MIN_S)
                                       + 1e-9, 0.5))
            if since > patterns[-1] + 0.25:
                patterns.append(since)
        in_doubt = len(patterns)  # the first ones: the audio since a jump
        if self._candidates or stream_s >= self._next_recheck:
            self._next_recheck = stream_s + self.RECHECK_EVERY_S
            since_lock = min(stream_s - self._lock_from, self.RECHECK_WINDOW_S)
            if since_lock >= self.JUMP_WINDOW_S:
                patterns.append(since_lock)
        if self._hint_new:
            self._hint_new = False
            moved = self._follow_hints(live, end_frame, stream_s, offset)
            if moved is not None:
                return moved
        anchor = self._anchor(offset)
        found = []
        jump = self.jump_since_s
        for i, seconds in enumerate(patterns):
            n = min(int(seconds * fr), live.size)
            if i < in_doubt and self._live_bands is not None:
                candidate = self._band_jump_to(seconds, live[-n:], end_frame - n, offset)
            else:
                candidate = self._jump_to(live[-n:], end_frame - n, offset)
                if candidate is not None and not self._bands_agree(seconds, candidate, offset):
                    candidate = None  # the envelope's beat fits there, the music does not
            if (candidate is not None and anchor is not None
                    and abs(candidate.offset_s - anchor) > self.HINT_AGREE_S
                    and (jump is None or (end_frame - n) / fr < jump - 0.01)):
                candidate = None  # the fingerprint placed this audio here, not there
            if candidate is not None:
                found.append(candidate)
        if found:
            # Taken when a search of a recent update agrees; of those, the longest audio that
            # places itself is the surest.
            self._candidates = [(t, e) for t, e in self._candidates
                                if t >= stream_s - self.CANDIDATE_S]
            agreed = [c for c in found if any(abs(c.offset_s - e.offset_s) <= self.AGREE_S
                                              for _, e in self._candidates)]
            if agreed:
                return max(agreed, key=lambda c: c.span_s)
            self._candidates += [(stream_s, c) for c in found]
            return None
        if self._doubt_since is not None:
            return None  # the prediction is in doubt: measuring it would only follow noise
        self._candidates.clear()  # outside a doubt, only two searches in a row agree
        steady = live[-max(int((stream_s - self._lock_from) * fr), int(self.CHECK_S * fr)):]
        radius = int(np.ceil(self.TRACK_RADIUS_S * fr))
        return self._local(steady, end_frame - steady.size, offset, radius, "local", inside=True)

    def _follow_hints(self, live, end_frame, stream_s, offset):
        """The lock where the newest fingerprint points, if it disagrees with the lock and the
        envelope fits there: in doubt (a jump), the audio since the jump better there than
        here; otherwise the audio since the lock about as well as here (within
        :attr:`JUMP_MARGIN`: the fingerprint's word is worth that much)."""
        hint = self._hints[-1]
        away = abs(hint.offset_s - offset)
        if away <= self.HINT_NEAR_S and self._doubt_since is None and self._heard_here(hint):
            self._confirmed = True
        if away <= 2 * self.TRACK_RADIUS_S:
            return None
        if self._doubt_since is not None:
            jump = self.jump_since_s
            if hint.from_s < jump - self.JUMP_LEAD_S:
                return None  # the fingerprint heard mostly the audio from before the jump
            seconds, margin = stream_s - max(hint.from_s, jump), 0.0
        elif not self._heard_here(hint):
            return None
        else:
            before = self._hints[0] if len(self._hints) == 2 else None
            if away <= self.HINT_AGREE_S and (
                    away <= self.HINT_NEAR_S or before is None or not self._heard_here(before)
                    or abs(before.offset_s - hint.offset_s) > self.HINT_SAME_S):
                return None
            # Fingerprints that contradict one another about the same audio (copies of a
            # chorus) leave the envelope to decide: there must then fit clearly better.
            margin = self.JUMP_MARGIN if self._confirmed else -self.JUMP_MARGIN
            seconds = min(stream_s - self._lock_from, self.RECHECK_WINDOW_S)
        there = self._hinted(live, end_frame, seconds, hint.offset_s, offset, margin=margin)
        if there is not None and not self._bands_allow(seconds, there):
            return None  # a copy of the riff, with other music over it
        if there is not None:
            self._coarse = hint.offset_s  # the place is the fingerprint's now
        return there

    def _hinted(self, live, end_frame, seconds, hinted, offset, *, margin):
        """The place near ``hinted`` the last ``seconds`` of audio fit best, if that is not
        here and fits at least ``margin`` better than here."""
        n = min(int(seconds * self.frame_rate), live.size)
        pattern, start = live[-n:], end_frame - n
        there = self._local(pattern, start, hinted, int(self.COARSE_RADIUS_S * self.frame_rate),
                            "global", min_score=self.COARSE_MIN_SCORE)
        if (there is not None and abs(there.offset_s - offset) > 2 * self.TRACK_RADIUS_S
                and there.score > self._fit(pattern, start, offset) + margin):
            return there
        return None

    def _heard_here(self, hint: _Hint) -> bool:
        """Whether ``hint`` fingerprinted the audio of the place locked (little from before)."""
        return hint.from_s >= self._place_from - self.JUMP_LEAD_S

    def _anchor(self, offset) -> float | None:
        """The fingerprint's offset for the lock, when one agrees with it: a fingerprint of the
        audio here, else the identification's when the lock is where it put it."""
        hint = self._hints[-1] if self._hints else None
        if (hint is not None and self._heard_here(hint)
                and abs(hint.offset_s - offset) <= self.HINT_AGREE_S):
            return hint.offset_s
        if self._coarse is not None and abs(self._coarse - offset) <= self.HINT_AGREE_S:
            return self._coarse
        return None

    def _fit(self, pattern, start_frame, offset_s) -> float:
        """Correlation of ``pattern`` at ``offset_s`` (within :attr:`TRACK_RADIUS_S`)."""
        radius = int(np.ceil(self.TRACK_RADIUS_S * self.frame_rate))
        here = self._local(pattern, start_frame, offset_s, radius, "local", min_score=-1.0)
        return here.score

    def _jump_to(self, pattern, start_frame, offset_s) -> SyncEstimate | None:
        """The place ``pattern`` fits clearly better than at ``offset_s``, if any."""
        # Where we are is judged below, against a larger margin: not the runner-up here.
        best = self._global(pattern, start_frame, inside=True, away_from=offset_s)
        if (best is None or best.score < self.JUMP_MIN_SCORE
                or best.score <= self._fit(pattern, start_frame, offset_s) + self.JUMP_MARGIN):
            return None
        return best

    def _band_jump_to(self, seconds, pattern, start_frame, offset_s) -> SyncEstimate | None:
        """The place the last ``seconds`` of the live bands fit clearly better than at
        ``offset_s``, if any, refined by the envelope ``pattern`` (from ``start_frame``)."""
        rate = self.band_rate
        recent = self._recent_bands(seconds)
        if recent is None:
            return None
        live, first = recent
        here = first + offset_s * rate  # the reference row it starts at if nothing jumped
        reach = self.BAND_HERE_S * rate
        position, score, runner_up = _pick_peak(  # in half rows
            self._bands.scores(live), min_gap=int(2 * self.PLACE_S * rate),
            exclude=(2 * (here - reach), 2 * (here + reach)))
        position /= 2
        if score < self.JUMP_MIN_SCORE or score - runner_up < self.min_margin:
            return None
        # The verdict, there and here, at the fraction of a row each place is at.
        score = max(score, self._bands.fit_at(live, position))
        if score <= self._bands.fit_at(live, here) + self.JUMP_MARGIN:
            return None
        coarse = (position - first) / rate
        fine = self._local(pattern, start_frame, coarse,
                           int(np.ceil(self.BAND_REFINE_S * self.frame_rate)), "global",
                           min_score=-1.0)
        return SyncEstimate(fine.stream_s, fine.offset_s, score, "global", fine.span_s)

    def _recent_bands(self, seconds) -> tuple[np.ndarray, int] | None:
        """The last ``seconds`` of the live bands and the stream row of their first, or None
        when there are none, too few to place (:attr:`BAND_MIN_ROWS`) or as many as the whole
        reference."""
        if self._live_bands is None:
            return None
        rows = min(int(seconds * self.band_rate + 1e-9), self._live_bands.shape[0])
        if rows < self.BAND_MIN_ROWS or rows >= self._bands.ref.shape[0]:
            return None
        return self._live_bands[-rows:], self._bands_end - rows

    def _bands_allow(self, seconds, candidate: SyncEstimate) -> bool:
        """Whether the last ``seconds`` of the live bands, if given, fit ``candidate``'s place
        within :attr:`HINT_BAND_SLACK` of the best place anywhere."""
        recent = self._recent_bands(seconds)
        if recent is None:
            return True
        live, first = recent
        there = self._bands.fit_at(live, first + candidate.offset_s * self.band_rate)
        return there >= float(self._bands.scores(live).max()) - self.HINT_BAND_SLACK

    def _bands_agree(self, seconds, candidate: SyncEstimate, offset_s) -> bool:
        """Whether the last ``seconds`` of the live bands, if given, fit ``candidate``'s place
        better than ``offset_s``."""
        recent = self._recent_bands(seconds)
        if recent is None:
            return True
        live, first = recent
        return (self._bands.fit_at(live, first + candidate.offset_s * self.band_rate)
                > self._bands.fit_at(live, first + offset_s * self.band_rate))

    def _global(self, live, start_frame, *, inside=False, away_from=None):
        """The one place ``live`` fits best, clearly better than any other; ``inside``: only
        where it lies wholly inside the song (a jump lands in the song; a stream may start
        before it); ``away_from``: an offset (s) not to consider."""
        lo, hi = (self._pad, self._ref.size - self._pad) if inside else (0, self._ref.size)
        if hi - lo < live.size:
            return None
        exclude = None
        if away_from is not None:
            at = start_frame + away_from * self.frame_rate + self._pad - lo
            reach = 2 * self.TRACK_RADIUS_S * self.frame_rate  # the steady search's, and more
            exclude = (at - reach, at + reach)
        # Peaks a beat or two from the best are the same place for this test: the runner-up
        # that counts is another passage.
        position, score, runner_up = ncc_peak(live, self._ref[lo:hi], exclude=exclude,
                                              min_gap=int(self.PLACE_S * self.frame_rate))
        if score < self.min_score or score - runner_up < self.min_margin:
            return None
        chart_start = (lo + position - self._pad) / self.frame_rate
        return self._estimate(start_frame, live.size, chart_start, score, "global")

    def _estimate(self, start_frame, size, chart_start, score, kind):
        # A window measures its mean offset: stamp it at the window's centre, so drift is fitted
        # without a lag of half a window.
        stream_start = start_frame / self.frame_rate
        span = size / self.frame_rate
        return SyncEstimate(stream_start + span / 2, chart_start - stream_start, score, kind,
                            span)

    def _resume(self, live, start_frame, stream_s):
        """After silence: the player was paused (offset reduced by the silence) or the song
        went on through a quiet passage (offset unchanged); search near both, else (a seek
        while paused) everywhere, as after a seek while playing."""
        fr = self.frame_rate
        heard = stream_s - self._sound_since
        if heard < self.RESUME_AFTER_S:
            return None
        before = self.offset_at(self._silence_start)
        paused_for = self._sound_since - self._silence_start
        # Only the frames since the sound came back say where it is now, less the onset of the
        # sound coming back itself.
        sound = live[-min(live.size, int((heard - self.EDGE_S) * fr)):]
        sound_start = start_frame + live.size - sound.size
        if self._silence_exact:
            radius = int(np.ceil(self.RESUME_RADIUS_S * fr))
            # Guesses as good as a fingerprint's: a weak fit near one is enough.
            guesses = [self._local(sound, sound_start, guess, radius, "resume",
                                   min_score=self.COARSE_MIN_SCORE)
                       for guess in (before - paused_for, before)]
            guesses = [g for g in guesses if g is not None]
            estimate = max(guesses, key=lambda g: g.score) if guesses else None
        else:
            # The silence began up to a detection delay before it was reported, and the sound
            # came back up to an update before it was seen: the pause may be that much longer.
            low, high = before - paused_for - self.EDGE_SLACK_S, before
            radius = int(np.ceil((high - low) / 2 * fr)) + self.search
            estimate = self._local(sound, sound_start, (low + high) / 2, radius, "resume",
                                   prior=False)
        if estimate is None and self._live_bands is not None:
            # Not where it was: a seek while paused, placed as a seek while playing is (by the
            # bands, once two updates agree).
            found = self._band_jump_to(sound.size / fr, sound, sound_start, before)
            if (found is not None and self._resume_found is not None
                    and abs(found.offset_s - self._resume_found.offset_s) <= self.AGREE_S):
                estimate = found
            self._resume_found = found
        if estimate is None and heard >= self.RESUME_AFTER_S + self.JUMP_SHORT_MIN_S:
            estimate = self._global(sound, sound_start)  # no bands, or they cannot place it
        if estimate is not None:
            self._silence_start = self._sound_since = self._resume_found = None
        return estimate

    def _accept(self, estimate: SyncEstimate) -> None:
        current = self.offset_at(estimate.stream_s) if self._points else None
        if current is not None and abs(estimate.offset_s - current) > 0.05:
            self._points.clear()  # a jump (seek, skip, pause): the old line no longer holds
        if not self._points:
            self._tracked = 0
            self._confirmed = False
            self._here_scores.clear()
            # The audio the new lock rests on starts where the measured window starts; its first
            # frames may hold the onset of the discontinuity itself (a stream starting mid-song).
            self._lock_from = estimate.stream_s - estimate.span_s / 2 + self.EDGE_S
            self._next_recheck = estimate.stream_s + self.RECHECK_EVERY_S
            # After a jump the place's audio starts at the jump, before the window that placed it.
            self._place_from = (self._lock_from if self._doubt_since is None
                                else min(self._lock_from, self.jump_since_s))
            if (self._coarse is not None
                    and abs(self._coarse - estimate.offset_s) > self.HINT_AGREE_S):
                self._coarse = None  # the identification's place, no longer this one
        self._points.append((estimate.stream_s, estimate.offset_s, estimate.score))
        while self._points and self._points[0][0] < estimate.stream_s - self.fit_s:
            self._points.pop(0)
        self._doubt_since = None
        self._candidates.clear()
        self.status = SyncStatus.LOCKED
        self.last = estimate

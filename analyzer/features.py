"""Onset-strength envelope and sync reference, shared by the analyzer and the live path.

API
---
- :data:`FRAME_RATE` — envelope frames per second (Hz), the same at every sample rate.
- :func:`onset_envelope` — ``(y, sr) -> envelope`` of a whole signal.
- :func:`sync_reference` — ``(y, sr) -> SyncReference`` stored in a chart: the envelope and
  the coarse band energies (:data:`BAND_RATE`).
- :class:`OnsetStream` — the same envelope and band energies computed block by block (the live
  path); :func:`onset_envelope` and :func:`sync_reference` are this class fed the whole signal,
  so there is one implementation.

Frame ``k`` is centred on sample ``(k * sr) // FRAME_RATE``, i.e. at ``k / FRAME_RATE`` seconds,
and looks at a window of ``WINDOW_S`` seconds around it. Spectra are pooled into mel bands defined
in Hz, so the envelope of the same sound is (nearly) the same at 44.1 kHz and 48 kHz. The value is
a spectral flux: the mean over bands of the positive change of log-compressed band magnitudes.

The log-compressed band magnitudes themselves, averaged over :data:`BAND_POOL` frames and stored
as bytes (:data:`BAND_STEP`), are the sync reference's coarse *bands*: the flux only hears
rhythm, and a second of it placed at a fraction of a frame's offset from the reference's grid
fits many places; the bands hear harmony and timbre, and barely change within a frame.
"""
from __future__ import annotations

import numpy as np

from chart_store.chart import SyncReference

__all__ = ["FRAME_RATE", "WINDOW_S", "N_BANDS", "BAND_POOL", "BAND_RATE", "BAND_STEP",
           "onset_envelope", "sync_reference", "OnsetStream", "FeatureError"]

#: Envelope frames per second (Hz). 10 ms frames; sub-frame precision comes from interpolation.
FRAME_RATE = 100
#: Analysis window length, seconds (two frames, so consecutive windows overlap by half).
WINDOW_S = 2 / FRAME_RATE
#: Mel bands pooled from the spectrum, and their range in Hz (below 8 kHz every common rate agrees).
N_BANDS = 24
FMIN_HZ, FMAX_HZ = 40.0, 8000.0
#: Log compression ``log1p(GAMMA * magnitude)``: near linear for quiet noise, logarithmic for
#: music.
GAMMA = 1000.0
#: Envelope frames averaged into one row of coarse bands, and the rows per second (Hz): 10 Hz
#: places a second of music as surely as 20 Hz (benchmarks on the development set), in half
#: the bytes (a 4-minute chart: 58 kB before compression).
BAND_POOL = 10
BAND_RATE = FRAME_RATE / BAND_POOL
#: Log units per byte step of the stored bands (log1p(GAMMA * 0.5), a full-scale sine, is 6.2:
#: 199 steps; the byte saturates at 8.0).
BAND_STEP = 1 / 32


class FeatureError(ValueError):
    """Input a feature cannot be computed from (sample rate out of range, wrong shape)."""


def _mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def _filterbank(sr: int, n_fft: int) -> np.ndarray:
    """Triangular mel filters, shape (N_BANDS, n_fft // 2 + 1), each row summing to 1."""
    fmax = min(FMAX_HZ, 0.45 * sr)
    edges = _mel_to_hz(np.linspace(_mel(FMIN_HZ), _mel(fmax), N_BANDS + 2))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0.0, np.minimum((freqs - lower) / (centre - lower),
                                    (upper - freqs) / (upper - centre)))
    sums = fb.sum(axis=1, keepdims=True)
    # A band narrower than a bin (only at very low sample rates) takes its nearest bin.
    for b in np.flatnonzero(sums[:, 0] == 0):
        fb[b, np.argmin(np.abs(freqs - centre[b, 0]))] = 1.0
    return (fb / fb.sum(axis=1, keepdims=True)).astype(np.float32)


class OnsetStream:
    """Onset envelope computed block by block, frame-exact with :func:`onset_envelope`.

    Feed mono float blocks of any length with :meth:`push`; each call returns how many new frames
    were completed, and :meth:`latest` copies the most recent frames out; :meth:`latest_bands`
    the most recent rows of coarse bands (:data:`BAND_RATE`, the same as
    :func:`sync_reference`'s; row ``j`` averages frames ``j * BAND_POOL`` to
    ``(j + 1) * BAND_POOL - 1`` and is complete with the last of them). Frame ``k`` is complete
    once the samples up to ``k / FRAME_RATE + WINDOW_S / 2`` seconds have been pushed, so the
    stream lags the input by half a window (10 ms). All buffers are allocated here; ``push``
    allocates only the FFT's output (NumPy's FFT has no ``out=``).

    Parameters
    ----------
    sr : int
        Sample rate of the input, Hz (8000..384000).
    capacity : int
        Frames kept for :meth:`latest` (a ring buffer), default 60 s.

    Examples
    --------
    >>> stream = OnsetStream(48000)
    >>> y = np.random.default_rng(0).standard_normal(48000).astype(np.float32)
    >>> sum(stream.push(y[i:i + 512]) for i in range(0, len(y), 512))
    100
    >>> stream.frames_done
    100
    """

    def __init__(self, sr: int, *, capacity: int = 60 * FRAME_RATE):
        if int(sr) != sr or not 8000 <= sr <= 384000:
            raise FeatureError(f"sample rate must be an integer in 8000..384000 Hz, got {sr!r}")
        if capacity < 1:
            raise FeatureError(f"capacity must be >= 1 frame, got {capacity!r}")
        self.sr = int(sr)
        self.win_length = 2 * int(np.ceil(WINDOW_S * self.sr / 2))
        self.n_fft = 1 << int(np.ceil(np.log2(self.win_length)))
        self._half = self.win_length // 2
        self._fb = _filterbank(self.sr, self.n_fft)
        self._window = np.hanning(self.win_length + 2)[1:-1].astype(np.float32)
        self._window /= self._window.sum()  # magnitudes independent of window length
        # Samples: a linear buffer whose element 0 is absolute sample ``_buf_start``; it holds the
        # current window plus room for incoming samples, and is shifted once per refill.
        self._buf = np.zeros(self.win_length + 8192, dtype=np.float32)
        self._buf_start = -self._half  # zero padding before time 0
        self._buf_fill = self._half
        self._frame = np.zeros(self.n_fft, dtype=np.float32)
        self._mag = np.empty(self.n_fft // 2 + 1, dtype=np.float32)
        self._bands = np.empty(N_BANDS, dtype=np.float32)
        self._prev = np.zeros(N_BANDS, dtype=np.float32)
        self._diff = np.empty(N_BANDS, dtype=np.float32)
        self._ring = np.zeros(capacity, dtype=np.float32)
        self._pool = np.zeros(N_BANDS, dtype=np.float32)  # the row being summed
        self._band_ring = np.zeros((max(capacity // BAND_POOL, 1), N_BANDS), dtype=np.uint8)
        self.frames_done = 0
        self.samples_in = 0

    @property
    def capacity(self) -> int:
        return self._ring.size

    @property
    def rows_done(self) -> int:
        """Rows of coarse bands completed."""
        return self.frames_done // BAND_POOL

    def centre_sample(self, k: int) -> int:
        """Input sample index at the centre of frame ``k``."""
        return (k * self.sr) // FRAME_RATE

    def push(self, y: np.ndarray) -> int:
        """Consume mono samples ``y`` (shape (n,), float); return the number of frames completed."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise FeatureError(f"OnsetStream.push takes mono samples of shape (n,), got {y.shape}")
        before = self.frames_done
        pos, n = 0, y.shape[0]
        while pos < n:
            room = self._buf.size - self._buf_fill
            if room == 0:
                self._shift()
                room = self._buf.size - self._buf_fill
            take = min(room, n - pos)
            self._buf[self._buf_fill:self._buf_fill + take] = y[pos:pos + take]
            self._buf_fill += take
            pos += take
            self._compute_ready()
        self.samples_in += n
        return self.frames_done - before

    def flush(self) -> int:
        """Complete the frames centred inside the pushed signal, padding its end with zeros."""
        n_frames = -(-self.samples_in * FRAME_RATE // self.sr)  # ceil
        before = self.frames_done
        zeros = np.zeros(512, dtype=np.float32)
        while self.frames_done < n_frames:
            self._push_padding(zeros)
        return self.frames_done - before

    def _push_padding(self, zeros: np.ndarray) -> None:
        samples_in = self.samples_in
        self.push(zeros)
        self.samples_in = samples_in  # padding is not input

    def latest(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """The last ``n`` frames (oldest first), copied into ``out`` (shape (n,)) if given.

        ``n`` may not exceed :attr:`capacity` nor :attr:`frames_done`.
        """
        if not 0 <= n <= min(self.capacity, self.frames_done):
            raise FeatureError(f"asked for {n} frames; {min(self.capacity, self.frames_done)} kept")
        return _ring_tail(self._ring, self.frames_done, n, out)

    def latest_bands(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """The last ``n`` rows of coarse bands (oldest first, shape (n, N_BANDS), uint8),
        copied into ``out`` if given; ``n`` may not exceed the rows kept nor :attr:`rows_done`."""
        kept = self._band_ring.shape[0]
        if not 0 <= n <= min(kept, self.rows_done):
            raise FeatureError(f"asked for {n} band rows; {min(kept, self.rows_done)} kept")
        return _ring_tail(self._band_ring, self.rows_done, n, out)

    def _shift(self) -> None:
        # Keep only what the next frame still needs.
        keep_from = self.centre_sample(self.frames_done) - self._half - self._buf_start
        keep = self._buf_fill - keep_from
        self._buf[:keep] = self._buf[keep_from:self._buf_fill]
        self._buf_start += keep_from
        self._buf_fill = keep

    def _compute_ready(self) -> None:
        buf_end = self._buf_start + self._buf_fill
        while True:
            start = self.centre_sample(self.frames_done) - self._half - self._buf_start
            if self._buf_start + start + self.win_length > buf_end:
                return
            np.multiply(self._buf[start:start + self.win_length], self._window,
                        out=self._frame[:self.win_length])
            np.abs(np.fft.rfft(self._frame), out=self._mag)  # the only per-frame allocation
            np.dot(self._fb, self._mag, out=self._bands)
            np.multiply(self._bands, GAMMA, out=self._bands)
            np.log1p(self._bands, out=self._bands)
            np.subtract(self._bands, self._prev, out=self._diff)
            np.maximum(self._diff, 0.0, out=self._diff)
            self._prev[:] = self._bands
            self._ring[self.frames_done % self.capacity] = self._diff.mean()
            np.add(self._pool, self._bands, out=self._pool)
            self.frames_done += 1
            if self.frames_done % BAND_POOL == 0:
                self._close_row()

    def _close_row(self) -> None:
        """Store the finished row of coarse bands as bytes and start the next."""
        pool = self._pool
        np.multiply(pool, 1.0 / (BAND_POOL * BAND_STEP), out=pool)
        np.rint(pool, out=pool)
        np.clip(pool, 0.0, 255.0, out=pool)
        self._band_ring[(self.rows_done - 1) % self._band_ring.shape[0]] = pool
        pool[:] = 0.0


def _ring_tail(ring: np.ndarray, done: int, n: int, out: np.ndarray | None) -> np.ndarray:
    """The last ``n`` of the ``done`` items written to ``ring`` (item ``i`` at ``i % len``),
    oldest first, copied into ``out`` if given."""
    if out is None:
        out = np.empty((n,) + ring.shape[1:], dtype=ring.dtype)
    end = done % ring.shape[0]
    first = min(n, end)
    out[n - first:n] = ring[end - first:end]
    if n > first:
        out[:n - first] = ring[ring.shape[0] - (n - first):]
    return out


def _mono(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        return y.mean(axis=0)
    if y.ndim != 1:
        raise FeatureError(f"audio must have shape (n,) or (channels, n), got {y.shape}")
    return y


def onset_envelope(y: np.ndarray, sr: int) -> np.ndarray:
    """Onset strength of a whole signal at :data:`FRAME_RATE` frames per second.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        Audio (channels are averaged).
    sr : int
        Sample rate, Hz.

    Returns
    -------
    np.ndarray [shape=(ceil(n * FRAME_RATE / sr),), dtype=float32]
        Frame ``k`` is the onset strength around ``k / FRAME_RATE`` seconds (>= 0).

    Examples
    --------
    >>> sr = 44100
    >>> y = np.zeros(sr, dtype=np.float32); y[sr // 2] = 1.0   # a click at 0.5 s
    >>> int(np.argmax(onset_envelope(y, sr)))
    50
    """
    stream, n_frames = _whole(y, sr)
    return stream.latest(stream.frames_done)[:n_frames]


def _whole(y: np.ndarray, sr: int) -> tuple[OnsetStream, int]:
    """An :class:`OnsetStream` fed all of ``y`` (downmixed) and flushed, and the number of
    frames the signal itself spans."""
    y = _mono(y)
    n_frames = -(-y.shape[0] * FRAME_RATE // int(sr))
    # flush() pads in 512-sample blocks, which may complete a few frames past the end: keep room.
    stream = OnsetStream(sr, capacity=n_frames + 16 + BAND_POOL)
    stream.push(y)
    stream.flush()
    return stream, n_frames


def sync_reference(y: np.ndarray, sr: int) -> SyncReference:
    """The chart's :class:`~chart_store.chart.SyncReference`: the onset envelope of the recording
    and its coarse bands (rows of :data:`N_BANDS` log band magnitudes at :data:`BAND_RATE`, in
    steps of :data:`BAND_STEP`; only rows wholly inside the recording).

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        The whole recording.
    sr : int
        Sample rate, Hz.

    Examples
    --------
    >>> ref = sync_reference(np.zeros(22050, dtype=np.float32), 22050)
    >>> ref.frame_rate, ref.envelope.shape, ref.band_rate, ref.bands.shape
    (100.0, (100,), 10.0, (10, 24))
    """
    stream, n_frames = _whole(y, sr)
    n_rows = n_frames // BAND_POOL
    return SyncReference(envelope=stream.latest(stream.frames_done)[:n_frames],
                         frame_rate=float(FRAME_RATE),
                         bands=stream.latest_bands(stream.rows_done)[:n_rows],
                         band_rate=float(BAND_RATE))

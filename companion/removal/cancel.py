"""Stem cancellation: subtract a known stem from the mixed stream, echo-canceller style.

When the chart's stem audio is on this machine (imported stems, or stems separated from the
user's own file), a missed note can be taken out of the stream by subtracting the stem itself.
What reaches LoopJam is not the stem, though: it went through the player's gain, a lossy codec,
maybe an EQ, and sits at an offset the sync knows only to a few milliseconds. :class:`StemCanceller`
learns that path from the stream itself, all the time (not only during missed notes, so it is
ready when one comes), like an acoustic echo canceller learns the loudspeaker-to-microphone path:

- per STFT frame and channel, cross- and auto-spectra ``Σ X·S*`` and ``Σ |S|²`` are averaged
  with a forgetting time of :data:`TIME_CONSTANT_S`; the rest of the mix is uncorrelated with the
  stem, so their ratio converges to the path's frequency response (gain, sub-sample delay, EQ);
- the path is the short FIR (±:data:`FIR_HALF_TAPS` taps) that best maps the stem to the stream
  given those spectra (Wiener-Hopf, a Toeplitz system): a real path is short, and fitting few
  taps weighted by the stem's own power keeps the noise of quiet bins out. For the first seconds
  of stem a prior holds every tap but the cross-correlation peak near 0 (a gain and a delay
  converge within a few notes; the EQ follows);
- the integer lag is tracked by GCC-PHAT on the same cross-spectrum, so a sync a few ms off (up
  to about a quarter of a frame, ~5 ms) is corrected to the sample.

The estimate ``H·S`` of the stem as it sounds in the stream is what the remover subtracts, scaled
down when the last fraction of a second of stream no longer holds it (:attr:`StemCanceller.confidence`:
the user turned the volume down, paused, or the song changed before the sync noticed).
Frame by frame the subtraction may raise the energy (the rest of the mix can be out of phase
with the stem there): that is correct cancellation, so no per-frame energy test is applied.
"""
from __future__ import annotations

import numpy as np

__all__ = ["StemCanceller", "TIME_CONSTANT_S", "FIR_HALF_TAPS", "FIT_TIME_S"]

#: Forgetting time of the path estimate, seconds: long enough to average the backing out (on the
#: development songs 20 s removed 0.5 dB more than 10 s, and 1.6 dB more than 4 s). A stream
#: turned down is caught within :data:`FIT_TIME_S` by :attr:`StemCanceller.confidence`; one
#: turned up is followed over about this time (meanwhile the stem is partly removed).
TIME_CONSTANT_S = 20.0
#: The path is modelled as an FIR from -FIR_HALF_TAPS to +FIR_HALF_TAPS samples.
FIR_HALF_TAPS = 8
#: Re-project the FIR every this many frames, re-check the lag every _LAG_EVERY frames.
_PROJECT_EVERY = 8
_LAG_EVERY = 32
#: Time over which the stream is checked to still hold the estimated stem, seconds; below
#: _FIT_FLOOR of the estimate found in the stream, subtraction is scaled down proportionally.
FIT_TIME_S = 0.1
_FIT_FLOOR = 0.7
#: Ridge on the autocorrelation's zero lag (keeps the solve well posed for a band-limited stem).
_RIDGE = 1e-4
#: Weight of the prior "the path is a gain and a delay", in frames of stem data (about 2 s).
_PRIOR_FRAMES = 200
#: A lag jump is taken only when the PHAT peak stands this far above the median correlation.
_LAG_CONFIDENCE = 8.0
#: No path is fitted until the stem's energy seen so far reaches this share of the stream's over
#: the same frames (-30 dB): the first frame of a stem's entry, where only the window's edge
#: touches it, would give taps as large as stream/stem (x1000s), and one such estimate held the
#: fit check (and the cancellation) at zero for 1.7 s after a real song's first guitar entry.
_MIN_STEM_SHARE = 1e-3


class StemCanceller:
    """Adaptive estimate of one stem as it sounds in the stream.

    Parameters
    ----------
    stem : np.ndarray [shape=(n,) or (stem_channels, n)]
        The stem at the stream's sample rate, sample 0 at chart time 0.
    channels : int
        Stream channels. A mono stem is matched to every channel; a stem with as many channels as
        the stream is matched channel by channel; any other layout is downmixed to mono first.
    window : np.ndarray [shape=(n_fft,)]
        The remover's analysis window.
    hop : int
        Frame hop in samples.
    sr : int
        Stream sample rate, Hz.
    """

    def __init__(self, stem: np.ndarray, *, channels: int, window: np.ndarray, hop: int, sr: int):
        stem = np.asarray(stem, dtype=np.float32)
        if stem.ndim == 1 or (stem.shape[0] != channels):
            stem = stem.reshape(-1, stem.shape[-1]).mean(axis=0, keepdims=True)
        n_fft = window.size
        # Zero margins let any frame read a full window without bounds checks.
        self._stem = np.pad(np.nan_to_num(stem), ((0, 0), (n_fft, n_fft)))
        self._margin = n_fft
        self.channels, self.n_fft, self.hop, self.sr = channels, n_fft, hop, sr
        self._window = window
        self._forget = float(np.exp(-hop / (TIME_CONSTANT_S * sr)))
        bins = n_fft // 2 + 1
        self._num = np.zeros((channels, bins), np.complex128)
        self._den = np.zeros((channels, bins), np.float64)
        self._path = np.zeros((channels, bins), np.complex128)
        self._k = np.arange(bins)
        self._fit_forget = float(np.exp(-hop / (FIT_TIME_S * sr)))
        self._fit_num = self._fit_den = 0.0
        self._frames = 0
        self._stream_power = 0.0
        #: Samples the stem is read later than the sync says (the tracked residual lag).
        self.lag = 0

    def reset(self) -> None:
        """Forget the path and the lag (after a seek or a song change)."""
        self._num[:] = 0
        self._den[:] = 0
        self._path[:] = 0
        self._fit_num = self._fit_den = 0.0
        self._frames = 0
        self._stream_power = 0.0
        self.lag = 0

    @property
    def path(self) -> np.ndarray:
        """Current path estimate, complex (channels, n_fft // 2 + 1) (0 until the stem has sounded)."""
        return self._path

    def stem_spectrum(self, chart_sample: int) -> np.ndarray:
        """Windowed spectrum of the stem frame starting at ``chart_sample`` (+ the tracked lag),
        shape (stem_channels, bins)."""
        start = chart_sample + self.lag + self._margin
        if start < 0 or start + self.n_fft > self._stem.shape[1]:
            return np.zeros((self._stem.shape[0], self.n_fft // 2 + 1), np.complex128)
        return np.fft.rfft(self._stem[:, start:start + self.n_fft] * self._window, axis=1)

    def frame(self, x: np.ndarray, chart_sample: int) -> np.ndarray:
        """Learn from one stream frame and return the stem's estimated contribution to it.

        Parameters
        ----------
        x : np.ndarray [shape=(channels, bins), complex]
            The stream frame's spectrum (same window as the stem's).
        chart_sample : int
            Chart-time sample (at the stream's rate) where the frame starts, per the sync.

        Returns
        -------
        np.ndarray [shape=(channels, bins), complex]
            ``H·S``: what to subtract to cancel the stem in this frame.
        """
        s = self.stem_spectrum(chart_sample)
        power = np.abs(s) ** 2
        estimate = self._path * s
        if power.sum() > 0:
            # How much of the estimate the stream really holds, over the last fraction of a second.
            self._fit_num = self._fit_num * self._fit_forget + float(np.real(np.vdot(estimate, x)))
            self._fit_den = self._fit_den * self._fit_forget + float(np.vdot(estimate, estimate).real)
            self._num *= self._forget
            self._den *= self._forget
            self._num += x * np.conj(s)
            self._den += power
            self._stream_power = self._stream_power * self._forget + float(np.vdot(x, x).real)
            self._frames += 1
            if self._frames % _LAG_EVERY == 0:
                self._track_lag()
            if self._frames % _PROJECT_EVERY == 0 or self._frames < _PRIOR_FRAMES:
                self._project()
        return estimate * self.confidence

    @property
    def confidence(self) -> float:
        """0..1: 1 while the stream holds what the path predicts; falls toward 0 within
        :data:`FIT_TIME_S` when it does not (stream muted or turned down, wrong song), so a stale
        path is never subtracted from a stream that lacks the stem."""
        if self._fit_den <= 0:
            return 1.0
        return min(1.0, max(0.0, self._fit_num / self._fit_den / _FIT_FLOOR))

    def _project(self) -> None:
        """Path = the short FIR that best maps the stem to the stream (Wiener-Hopf).

        A plain ratio ``num / den`` per bin is noise wherever the stem is quiet (its top octave),
        and that noise would leak into every tap; solving for the taps weighs each bin by the
        stem's power instead: ``R_ss h = r_xs`` with the stem's autocorrelation (Toeplitz) and
        the stream-stem cross-correlation, both from the averaged spectra.
        """
        if self._den.sum() < _MIN_STEM_SHARE * self._stream_power:
            self._path[:] = 0
            return
        taps = FIR_HALF_TAPS
        auto = np.fft.irfft(self._den, n=self.n_fft, axis=1)[:, :2 * taps + 1]
        cross = np.fft.irfft(self._num, n=self.n_fft, axis=1)
        lags = np.arange(-taps, taps + 1) % self.n_fft
        fir = np.zeros((self.channels, self.n_fft))
        # Until the stem has sounded for a while, all taps but the one at the cross-correlation
        # peak are held near 0 (a prior worth _PRIOR_FRAMES frames): a gain and a delay alone are
        # learnt from every bin at once and converge within a few notes; the EQ and fractional
        # delay follow as data comes.
        shrink = _PRIOR_FRAMES / max(self._frames, 1)
        index = np.arange(2 * taps + 1)
        for c in range(self.channels):
            if auto[c, 0] <= 0:
                continue
            peak = int(np.argmax(np.abs(cross[c, lags])))
            matrix = auto[c][np.abs(index[:, None] - index[None, :])]
            matrix[index, index] += auto[c, 0] * (_RIDGE + shrink * (index != peak))
            fir[c, lags] = np.linalg.solve(matrix, cross[c, lags])
        self._path = np.fft.rfft(fir, axis=1)

    def _track_lag(self) -> None:
        """Move the stem read position to the GCC-PHAT peak when it is clearly off zero."""
        cross = self._num.sum(axis=0)
        mag = np.abs(cross)
        if not np.any(mag > 0):
            return
        corr = np.fft.irfft(cross / np.maximum(mag, 1e-30), n=self.n_fft)
        peak = int(np.argmax(corr))
        lag = peak if peak < self.n_fft // 2 else peak - self.n_fft
        if abs(lag) <= FIR_HALF_TAPS // 2:
            return
        if corr[peak] < _LAG_CONFIDENCE * np.median(np.abs(corr)):
            return
        # The stream lags the stem read position by `lag`: read the stem `lag` samples earlier and
        # rotate the averages to match, so they stay valid.
        self.lag -= lag
        rot = np.exp(2j * np.pi * self._k * lag / self.n_fft)
        self._num *= rot[None, :]
        self._project()

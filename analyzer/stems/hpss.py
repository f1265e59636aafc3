"""Harmonic/percussive separation, plus a bass/other split of the harmonic part: no model, no
download, a fraction of a second per minute of audio.

Fitzgerald's HPSS (what ``librosa.decompose.hpss`` implements) smooths the magnitude spectrogram
along time (sustained partials survive) and along frequency (broadband hits survive) with median
filters, then splits the STFT with soft masks. Median filters over a 3-minute spectrogram cost
~2.5 s on one core (measured with scipy.ndimage), a third of the whole analysis budget, so the
smoothing here is a grey-scale morphological opening (running min then max, O(1) per cell, ~0.1 s):
like the median it removes peaks narrower than the window and keeps plateaus wider than it, which
is all the soft masks need. The STFT is NumPy's FFT over half-overlapping sqrt-Hann frames (exact
reconstruction), which spares librosa's spectral modules (~1 s of imports per process).
"""
from __future__ import annotations

import numpy as np

__all__ = ["separate_hpss", "harmonic_mask", "bass_weights", "STEM_NAMES"]

#: Stem names, shared with Demucs where they mean the same thing.
STEM_NAMES = ("drums", "bass", "other")


def separate_hpss(y: np.ndarray, sr: int, *, harmonic_s: float = 0.2,
                  percussive_hz: float = 500.0, bass_hz: float = 180.0, power: float = 2.0,
                  block_s: float = 60.0) -> dict[str, np.ndarray]:
    """Split ``y`` into percussive ("drums"), low harmonic ("bass") and other harmonic ("other").

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        The mix.
    sr : int
        Sample rate (Hz).
    harmonic_s : float
        A partial steadier than this many seconds counts as harmonic.
    percussive_hz : float
        A hit spread over more than this many Hz at once counts as percussive.
    bass_hz : float
        Crossover between "bass" and "other" (Hz).
    power : float
        Exponent of the soft masks (2: Wiener-like).
    block_s : float
        Seconds of spectrogram held in memory at once (the result does not depend on it): memory
        stays a few times the output whatever the file's length.

    Returns
    -------
    dict[str, np.ndarray]
        ``{"drums", "bass", "other"}``, each shaped like ``y``, float32; they sum to ``y``.

    Examples
    --------
    >>> sr = 22050
    >>> t = np.arange(2 * sr) / sr
    >>> tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    >>> stems = separate_hpss(tone, sr)
    >>> bool(np.sum(stems["other"] ** 2) > 10 * np.sum(stems["drums"] ** 2))
    True
    """
    y = np.asarray(y, np.float32)
    # ~46 ms frames (1024 at 22.05 kHz, partials ~22 Hz apart) at half overlap: a quarter of
    # the cells of librosa's default 2048/512, for masks that need no finer grid.
    n_fft = int(2 ** np.round(np.log2(0.046 * sr)))
    hop = n_fft // 2
    resolution = dict(frame_rate=sr / hop, bin_hz=sr / n_fft, harmonic_s=harmonic_s,
                      percussive_hz=percussive_hz)
    low = bass_weights(np.fft.rfftfreq(n_fft, 1.0 / sr), bass_hz)
    window = _window(n_fft)

    frames = _frames(y, n_fft)  # a view: (..., n_frames, n_fft)
    n_frames = frames.shape[-2]
    # Frames are independent; the time opening reaches k_time - 1 frames either side, so each
    # block is computed with that margin and gives exactly what the whole signal would.
    block, margin = max(1, int(block_s * sr / hop)), _opening_widths(**resolution)[0]
    drums = np.zeros((*y.shape[:-1], n_frames + 1, hop), np.float32)
    bass = np.zeros_like(drums)
    for f0 in range(0, n_frames, block):
        f1 = min(f0 + block, n_frames)
        a, b = max(0, f0 - margin), min(n_frames, f1 + margin)
        stft = np.fft.rfft(frames[..., a:b, :] * window, axis=-1)
        magnitude = np.abs(stft)
        if magnitude.ndim == 3:  # one mask for all channels keeps the stereo image
            magnitude = magnitude.mean(axis=0)
        mask_h = harmonic_mask(magnitude, **resolution, power=power)
        keep = slice(f0 - a, f1 - a)
        stft, mask_h = stft[..., keep, :], mask_h[keep]
        _overlap_add(drums, stft * (1.0 - mask_h), f0, window)
        _overlap_add(bass, stft * (mask_h * low), f0, window)

    length = y.shape[-1]
    drums = drums.reshape(*y.shape[:-1], -1)[..., hop:hop + length]
    bass = bass.reshape(*y.shape[:-1], -1)[..., hop:hop + length]
    # The three masks sum to one, so "other" is the remainder: exact sum, one inverse STFT less.
    other = y - drums
    other -= bass
    return {"drums": drums, "bass": bass, "other": other}


def harmonic_mask(magnitude: np.ndarray, *, frame_rate: float, bin_hz: float,
                  harmonic_s: float = 0.2, percussive_hz: float = 500.0,
                  power: float = 2.0) -> np.ndarray:
    """The soft mask of the harmonic part of a magnitude spectrogram (1 harmonic, 0 percussive).

    Parameters
    ----------
    magnitude : np.ndarray [shape=(frames, bins)]
    frame_rate : float
        Frames per second.
    bin_hz : float
        Hz between two bins.
    harmonic_s : float
        A partial steadier than this many seconds counts as harmonic.
    percussive_hz : float
        A hit spread over more than this many Hz at once counts as percussive.
    power : float
        Exponent of the soft mask (2: Wiener-like).

    Returns
    -------
    np.ndarray [shape=(frames, bins)]
        In 0..1; the percussive mask is one minus it.

    Examples
    --------
    >>> spec = np.zeros((40, 64), np.float32)   # 23 ms frames, 21.5 Hz bins
    >>> spec[:, 10] = 1.0          # a partial held throughout
    >>> spec[20, :] = 1.0          # a hit across every bin
    >>> mask = harmonic_mask(spec, frame_rate=43.0, bin_hz=21.5)
    >>> float(mask[5, 10]), float(mask[20, 40])
    (1.0, 0.0)
    """
    from scipy import ndimage

    def opening(x, size, axis):
        return ndimage.maximum_filter1d(ndimage.minimum_filter1d(x, size, axis=axis), size,
                                        axis=axis)

    k_time, k_freq = _opening_widths(frame_rate, bin_hz, harmonic_s, percussive_hz)
    harmonic = opening(magnitude, k_time, axis=0) ** power
    percussive = opening(magnitude, k_freq, axis=1) ** power
    return harmonic / np.maximum(harmonic + percussive, np.finfo(np.float32).tiny)


def bass_weights(freqs: np.ndarray, bass_hz: float) -> np.ndarray:
    """How much of each frequency (Hz) is "bass": a smooth crossover, 1 below ``bass_hz``, 0.5 at
    it, 0 an octave above."""
    return (1.0 / (1.0 + (np.asarray(freqs) / bass_hz) ** 8)).astype(np.float32)


def _opening_widths(frame_rate: float, bin_hz: float, harmonic_s: float,
                    percussive_hz: float) -> tuple[int, int]:
    """The odd widths (frames, bins) of the time and frequency openings of :func:`harmonic_mask`."""
    return (max(3, int(round(harmonic_s * frame_rate)) | 1),
            max(3, int(round(percussive_hz / bin_hz)) | 1))


def _window(n_fft: int) -> np.ndarray:
    # sqrt of a periodic Hann: its square sums to one at half overlap, so analysis and
    # synthesis with it reconstruct the input exactly.
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def _frames(y: np.ndarray, n_fft: int) -> np.ndarray:
    """Half-overlapping frames centred at ``k * n_fft / 2``, as a view: (..., frames, n_fft)."""
    hop = n_fft // 2
    n_frames = y.shape[-1] // hop + 2
    pad = [(0, 0)] * (y.ndim - 1) + [(hop, n_frames * hop - y.shape[-1])]
    return np.lib.stride_tricks.sliding_window_view(np.pad(y, pad), n_fft, axis=-1)[..., ::hop, :]


def _overlap_add(out: np.ndarray, stft: np.ndarray, f0: int, window: np.ndarray) -> None:
    """Add the inverse of STFT frames ``f0...`` into ``out`` (shape (..., frames + 1, hop)):
    frame ``f`` covers hops ``f`` and ``f + 1``."""
    hop = window.size // 2
    frames = np.fft.irfft(stft, n=window.size, axis=-1).astype(np.float32) * window
    halves = frames.reshape(*frames.shape[:-1], 2, hop)
    n = frames.shape[-2]
    out[..., f0:f0 + n, :] += halves[..., 0, :]
    out[..., f0 + 1:f0 + n + 1, :] += halves[..., 1, :]

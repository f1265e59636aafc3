"""Chromaprint fingerprints of audio and what identification answers.

- :func:`fingerprint` — raw Chromaprint items of mono float audio at any sample rate;
- :data:`ITEM_S` — seconds between consecutive items, read from the library;
- :func:`bit_error_rate` — fraction of differing bits between two aligned item runs;
- :class:`Match` — a recognised chart and where in it the audio starts.

The inverted index that finds a few seconds of audio among many recordings lives in
:mod:`chart_store.index`.

Chromaprint is reached through pyacoustid's ctypes binding (``chromaprint`` module), imported
on first use, so importing this module touches no library.
"""
from __future__ import annotations

import ctypes
import functools
from dataclasses import asdict, dataclass

import numpy as np

from chart_store.chart import Fingerprint

__all__ = ["ALGORITHM", "CHROMAPRINT_SR", "ITEM_S", "Match", "FingerprintError", "fingerprint",
           "bit_error_rate"]

#: Chromaprint algorithm, numbered as fpcalc numbers it (the library's id is one less).
ALGORITHM = 2
#: Chromaprint's internal sample rate (Hz); it resamples any input to this.
CHROMAPRINT_SR = 11025


class FingerprintError(ValueError):
    """Audio that cannot be fingerprinted (wrong shape, not finite, library failure)."""


@dataclass(frozen=True)
class Match:
    """A recognised chart.

    ``offset_s`` is the chart time (seconds) of the query's first sample; ``confidence`` is in
    0..1 (1 = the query's bits all agree with the chart, 0 = at the rejection threshold).
    """

    chart_id: str
    title: str
    artist: str
    offset_s: float
    confidence: float

    def to_json(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def _lib():
    """libchromaprint with the raw-fingerprint calls pyacoustid does not declare."""
    try:
        import chromaprint
    except ImportError as error:  # the binding raises ImportError when the library is missing
        raise FingerprintError(f"Chromaprint is not available: {error}") from None
    lib = chromaprint._libchromaprint
    ctx_fn = (ctypes.c_void_p,)
    lib.chromaprint_get_raw_fingerprint.argtypes = (
        ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint32)),
        ctypes.POINTER(ctypes.c_int))
    lib.chromaprint_get_raw_fingerprint.restype = ctypes.c_int
    lib.chromaprint_get_item_duration.argtypes = ctx_fn
    lib.chromaprint_get_item_duration.restype = ctypes.c_int
    lib.chromaprint_get_delay.argtypes = ctx_fn
    lib.chromaprint_get_delay.restype = ctypes.c_int
    return lib


#: Seconds between items for :data:`ALGORITHM`: the hop is 1365 samples at 11025 Hz (the
#: library's ``chromaprint_get_item_duration``; a test checks it).
ITEM_S = 1365 / CHROMAPRINT_SR


def fingerprint(y: np.ndarray, sr: int) -> Fingerprint:
    """Chromaprint raw fingerprint of audio.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        Float audio in -1..1 (multi-channel input is averaged to mono).
    sr : int > 0
        Sample rate of ``y`` in Hz; Chromaprint resamples internally to 11025 Hz.

    Returns
    -------
    Fingerprint
        ``items`` has one uint32 per :data:`ITEM_S` seconds; item ``k`` describes the audio
        from ``k * ITEM_S`` on (about 2.6 s of it), so a recording shorter than that has none.

    Examples
    --------
    >>> import numpy as np
    >>> sr = 22050
    >>> y = np.random.default_rng(0).standard_normal(10 * sr).astype(np.float32) * 0.1
    >>> fp = fingerprint(y, sr)
    >>> 55 <= len(fp.items) <= 60
    True
    """
    y = np.asarray(y)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.ndim != 1:
        raise FingerprintError(f"audio must be (n,) or (channels, n), got shape {y.shape}")
    if not (isinstance(sr, (int, np.integer)) and 0 < sr <= 1_000_000):
        raise FingerprintError(f"sample rate must be a positive integer, got {sr!r}")
    if not np.all(np.isfinite(y)):
        raise FingerprintError("audio contains NaN or infinite samples")
    pcm = np.clip(np.round(y * 32767.0), -32768, 32767).astype("<i2")
    lib = _lib()
    ctx = lib.chromaprint_new(ALGORITHM - 1)
    try:
        ok = lib.chromaprint_start(ctx, int(sr), 1)
        ok = ok and lib.chromaprint_feed(ctx, pcm.tobytes(), pcm.size)
        ok = ok and lib.chromaprint_finish(ctx)
        raw = ctypes.POINTER(ctypes.c_uint32)()
        size = ctypes.c_int()
        ok = ok and lib.chromaprint_get_raw_fingerprint(ctx, ctypes.byref(raw), ctypes.byref(size))
        if not ok:
            raise FingerprintError("Chromaprint failed to fingerprint the audio")
        try:
            items = (np.ctypeslib.as_array(raw, shape=(size.value,)).copy() if size.value
                     else np.zeros(0, np.uint32))
        finally:
            lib.chromaprint_dealloc(raw)
    finally:
        lib.chromaprint_free(ctx)
    return Fingerprint(items=items, algorithm=ALGORITHM, item_s=ITEM_S)


def bit_error_rate(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction (0..1) of differing bits between two equally long uint32 item runs.

    >>> bit_error_rate(np.array([0b1011], np.uint32), np.array([0b0011], np.uint32))
    0.03125
    """
    a = np.asarray(a, np.uint32)
    b = np.asarray(b, np.uint32)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"item runs must be 1-D and equally long, got {a.shape} and {b.shape}")
    if not a.size:
        return 1.0
    return float(np.bitwise_count(a ^ b).sum()) / (32.0 * a.size)

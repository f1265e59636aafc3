"""Calibration: the delays between the game clock and what the player hears, sees and presses.

Three offsets, milliseconds, positive = "happens later than the clock says":

- ``audio_ms`` — sound reaches the ears this much after the audio clock's position (speaker or
  Bluetooth latency the backend does not report);
- ``video_ms`` — a frame reaches the eyes this much after it is drawn (display lag);
- ``input_ms`` — a key event is stamped this much after the finger hit the key.

The game clock is what the player hears: :func:`heard_time`. Notes are drawn ``video_ms`` ahead
(:func:`draw_time`) and key stamps are moved back by ``input_ms`` (:func:`input_time`).

Automatic calibration is a tap test: the player taps along to clicks (audio) or flashes (video);
:func:`offset_from_taps` takes the median of the tap errors after dropping outliers, so a few
missed or doubled taps do not move it. :func:`click_track` makes the clicks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Offsets", "TapCalibration", "CalibrationError", "heard_time", "draw_time", "input_time",
    "offset_from_taps", "click_track",
]


class CalibrationError(ValueError):
    """Too few usable taps, or bad input arrays."""


@dataclass(frozen=True)
class Offsets:
    """Calibration offsets in milliseconds (see the module docstring for their meaning)."""

    audio_ms: float = 0.0
    video_ms: float = 0.0
    input_ms: float = 0.0


def heard_time(clock_s: float, offsets: Offsets) -> float:
    """Chart time the player hears when the audio clock says ``clock_s``."""
    return clock_s - offsets.audio_ms / 1000.0


def draw_time(game_s: float, offsets: Offsets) -> float:
    """Chart time to draw now so the frame is on time when it reaches the eyes."""
    return game_s + offsets.video_ms / 1000.0


def input_time(stamp_s: float, offsets: Offsets) -> float:
    """Chart time of a key press stamped at game time ``stamp_s``."""
    return stamp_s - offsets.input_ms / 1000.0


@dataclass(frozen=True)
class TapCalibration:
    """Result of a tap test: ``offset_ms`` (median error, positive = taps late), the spread of
    the kept taps (median absolute deviation, ms), and how many taps were kept/dropped."""

    offset_ms: float
    spread_ms: float
    used: int
    outliers: int


def offset_from_taps(*, taps: np.ndarray, beats: np.ndarray, min_taps: int = 8,
                     outlier_mads: float = 4.0) -> TapCalibration:
    """Estimate a player's constant delay from taps against known beat times.

    Each tap is paired with its nearest beat; taps further than half the median beat interval
    are dropped first (they belong to no beat), then taps further than ``outlier_mads`` scaled
    median absolute deviations (at least 10 ms) from the median error.

    Parameters
    ----------
    taps : np.ndarray [shape=(n,)]
        Tap times, seconds, on the same clock as ``beats``.
    beats : np.ndarray [shape=(m,)]
        Beat (click or flash) times, seconds, ascending, m >= 2.
    min_taps : int
        Fewest kept taps that make an answer.
    outlier_mads : float
        Rejection threshold in scaled MADs.

    Returns
    -------
    TapCalibration

    Examples
    --------
    >>> beats = np.arange(16) * 0.5
    >>> offset_from_taps(taps=beats + 0.030, beats=beats).offset_ms
    30.0
    """
    taps = np.asarray(taps, dtype=np.float64).ravel()
    beats = np.asarray(beats, dtype=np.float64).ravel()
    if beats.size < 2 or np.any(np.diff(beats) <= 0):
        raise CalibrationError("need at least 2 ascending beat times")
    nearest = np.clip(np.searchsorted(beats, taps), 1, beats.size - 1)
    left, right = beats[nearest - 1], beats[nearest]
    errors = np.where(np.abs(taps - left) <= np.abs(taps - right), taps - left, taps - right)
    errors = errors[np.abs(errors) < np.median(np.diff(beats)) / 2]
    if errors.size < min_taps:
        raise CalibrationError(f"only {errors.size} taps near a beat; need {min_taps}")
    median = np.median(errors)
    mad = 1.4826 * np.median(np.abs(errors - median))
    kept = errors[np.abs(errors - median) <= max(outlier_mads * mad, 0.010)]
    if kept.size < min_taps:
        raise CalibrationError(f"only {kept.size} consistent taps; need {min_taps}")
    center = np.median(kept)
    return TapCalibration(
        offset_ms=round(float(center) * 1000.0, 3),
        spread_ms=round(float(1.4826 * np.median(np.abs(kept - center))) * 1000.0, 3),
        used=int(kept.size), outliers=int(errors.size - kept.size + taps.size - errors.size))


def click_track(*, sr: int = 48000, bpm: float = 100.0, beats: int = 24,
                lead_in_s: float = 1.0, click_s: float = 0.02,
                freq_hz: float = 1500.0) -> tuple[np.ndarray, np.ndarray]:
    """Clicks for the audio tap test.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        Mono audio: decaying sine bursts of ``click_s`` seconds at each beat.
    beat_times : np.ndarray [shape=(beats,)]
        Click onsets, seconds from the start of ``y``.

    Examples
    --------
    >>> y, t = click_track(sr=8000, bpm=120, beats=4, lead_in_s=0.5)
    >>> t.tolist()
    [0.5, 1.0, 1.5, 2.0]
    """
    if sr <= 0 or bpm <= 0 or beats < 1:
        raise CalibrationError("sr, bpm and beats must be positive")
    beat_times = lead_in_s + np.arange(beats) * 60.0 / bpm
    y = np.zeros(int(round((beat_times[-1] + 1.0) * sr)), dtype=np.float32)
    n = int(round(click_s * sr))
    t = np.arange(n) / sr
    burst = (0.8 * np.sin(2 * np.pi * freq_hz * t) * np.exp(-t / (click_s / 4))).astype(np.float32)
    for start in np.round(beat_times * sr).astype(int):
        y[start:start + n] += burst[: y.size - start]
    return y, beat_times

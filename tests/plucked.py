"""Synthetic plucked-string recordings with exact ground truth, for the note and charting tests.

A plucked note is six decaying harmonics of its fundamental (a 3 ms attack, exponential decay,
a 50 ms fade at the end so only the attack is an onset); a faint noise floor stands in for a real
recording's. :func:`riff` lays notes on a steady 16th-note grid: always on the beat, sometimes in
between, pitches from a scale, so tempo, onsets and pitches are all known.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The pitches riffs are drawn from (MIDI): A minor from A2 to C4.
SCALE = np.array([45, 47, 48, 50, 52, 53, 55, 57, 59, 60])


@dataclass(frozen=True)
class Riff:
    """A synthetic recording: mono float32 ``y`` at ``sr`` Hz, note ``times`` (s) and ``pitches``
    (MIDI), the tempo ``bpm`` and the first beat ``t0`` (s)."""

    y: np.ndarray
    sr: int
    times: np.ndarray
    pitches: np.ndarray
    bpm: float
    t0: float

    @property
    def beats(self) -> np.ndarray:
        return np.arange(self.t0, self.y.size / self.sr - 1.0, 60.0 / self.bpm)


def pluck(midi: float, dur: float, sr: int, *, decay: float = 4.0) -> np.ndarray:
    """One plucked note, ``dur`` seconds, peak about 1."""
    t = np.arange(int(dur * sr)) / sr
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    env = np.exp(-decay * t) * np.minimum(1.0, t / 0.003) * np.minimum(1.0, (dur - t) / 0.05)
    tone = sum(0.7 ** (h - 1) * np.sin(2 * np.pi * f0 * h * t) for h in range(1, 7)
               if f0 * h < sr / 2)
    return (env * tone / 2.5).astype(np.float32)


def render(times, pitches, *, sr: int, duration_s: float, note_s: float = 0.4,
           seed: int = 0) -> np.ndarray:
    """Mix plucked notes at ``times`` (s) with ``pitches`` (MIDI) over a -60 dB noise floor."""
    rng = np.random.default_rng(seed)
    y = (rng.standard_normal(int(duration_s * sr)) * 1e-3).astype(np.float32)
    for t, p in zip(times, pitches):
        note = pluck(p, note_s, sr)
        i = int(round(t * sr))
        y[i:i + note.size] += 0.3 * note[:max(0, y.size - i)]
    return y


def riff(*, bpm: float = 120.0, bars: int = 8, sr: int = 22050, seed: int = 0,
         fill: float = 0.4, t0: float = 0.5) -> Riff:
    """A riff on a 16th grid: every beat has a note, other 16ths with probability ``fill``."""
    rng = np.random.default_rng(seed)
    slot = 60.0 / bpm / 4
    times, pitches = [], []
    for k in range(bars * 16):
        if k % 4 == 0 or rng.random() < fill:
            times.append(t0 + k * slot)
            pitches.append(int(rng.choice(SCALE)))
    duration = t0 + bars * 16 * slot + 1.5
    y = render(times, pitches, sr=sr, duration_s=duration, seed=seed)
    return Riff(y, sr, np.array(times), np.array(pitches), float(bpm), t0)


@dataclass(frozen=True)
class TempoChange:
    """A riff that changes tempo once: ``y`` at ``sr`` Hz, note ``times`` (s), the true ``beats``
    (s) and the time of the change ``change_s`` (the first beat at the new tempo)."""

    y: np.ndarray
    sr: int
    times: np.ndarray
    beats: np.ndarray
    change_s: float


def tempo_change(first_bpm: float, second_bpm: float, *, bars: int = 12, sr: int = 22050,
                 seed: int = 0) -> TempoChange:
    """:func:`riff` at ``first_bpm`` for ``bars`` bars, then another at ``second_bpm``."""
    first = riff(bpm=first_bpm, bars=bars, sr=sr, seed=seed)
    change = first.t0 + bars * 4 * 60.0 / first_bpm
    second = riff(bpm=second_bpm, bars=bars, sr=sr, seed=seed + 1, t0=0.0)
    times = np.concatenate([first.times, change + second.times])
    pitches = np.concatenate([first.pitches, second.pitches])
    beats = np.concatenate([first.t0 + np.arange(bars * 4) * 60.0 / first_bpm,
                            change + np.arange(bars * 4) * 60.0 / second_bpm])
    duration = change + bars * 4 * 60.0 / second_bpm + 1.5
    return TempoChange(render(times, pitches, sr=sr, duration_s=duration, seed=seed), sr, times,
                       beats, change)


def shuffle(*, bpm: float = 130.0, bars: int = 16, sr: int = 22050, seed: int = 0,
            t0: float = 0.5) -> Riff:
    """A shuffle: swung 8ths, a note on every beat and two thirds of the way to the next."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    times = t0 + (np.arange(bars * 4)[:, None] + np.array([0.0, 2 / 3])).ravel() * beat
    pitches = rng.choice(SCALE, times.size)
    y = render(times, pitches, sr=sr, duration_s=t0 + bars * 4 * beat + 1.5, seed=seed)
    return Riff(y, sr, times, pitches, float(bpm), t0)


def tempo_ramp(first_bpm: float, last_bpm: float, *, beats: int = 160, sr: int = 22050,
               seed: int = 0, fill: float = 0.4, t0: float = 0.5) -> TempoChange:
    """A riff whose tempo moves steadily from ``first_bpm`` to ``last_bpm`` over ``beats``
    beats (an accelerando or ritardando); ``change_s`` is its middle."""
    rng = np.random.default_rng(seed)
    bpm = np.linspace(first_bpm, last_bpm, beats)
    beat_times = t0 + np.concatenate([[0.0], np.cumsum(60.0 / bpm[:-1])])
    times = []
    for start, end in zip(beat_times[:-1], beat_times[1:]):
        times += [start + q * (end - start) / 4 for q in range(4) if q == 0 or rng.random() < fill]
    times = np.array(times)
    y = render(times, rng.choice(SCALE, times.size), sr=sr, duration_s=beat_times[-1] + 1.5,
               seed=seed)
    return TempoChange(y, sr, times, beat_times[:-1], float(np.median(beat_times)))


def brickwall(y: np.ndarray, sr: int, *, gain_db: float, ceiling: float = 0.5,
              release_s: float = 0.05) -> np.ndarray:
    """``y`` made louder by ``gain_db`` through a brickwall limiter, as a loud master is: no
    sample over ``ceiling``, the gain cut at once (1 ms blocks) and recovering over
    ``release_s``."""
    x = np.asarray(y, dtype=np.float64) * 10 ** (gain_db / 20)
    block = max(1, sr // 1000)
    n = -(-x.size // block)
    peaks = np.abs(np.pad(x, (0, n * block - x.size))).reshape(n, block).max(axis=1)
    wanted = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    recover = 1.0 - np.exp(-block / (release_s * sr))
    gain = np.empty(n)
    g = 1.0
    for k in range(n):
        g = min(wanted[k], g + (1.0 - g) * recover)
        gain[k] = g
    return (x * np.repeat(gain, block)[:x.size]).astype(np.float32)

"""Tempo maps: the exact conversion between chart ticks and seconds.

A :class:`TempoMap` is what the ``set_tempo`` events of a MIDI file (or the ``B`` events of a
``.chart``) say: from each change's tick on, every beat lasts ``beat_s`` seconds. Times are
computed segment by segment from the tick of the change, so no rounding accumulates.

:meth:`TempoMap.from_beats` goes the other way, for export: it turns a chart's beat times into a
tempo map whose beats fall exactly (to the microsecond) on those times.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["TempoMap", "DEFAULT_BEAT_S", "MAX_EXPORT_BEAT_S", "MAX_BEATS"]

#: 120 BPM, the MIDI default when a file sets no tempo.
DEFAULT_BEAT_S = 0.5
#: Longest beat :meth:`TempoMap.from_beats` writes: at 480 ticks a beat, half a tick of a 0.9 s beat
#: is 0.94 ms, so every note lands within 1 ms of its time. Slower beats are split in halves,
#: thirds... (a 50 BPM song is written as 100 BPM).
MAX_EXPORT_BEAT_S = 0.9
#: Most beats :meth:`TempoMap.beat_times` lists: an hour at 1000 BPM.
MAX_BEATS = 60_000


@dataclass(frozen=True)
class TempoMap:
    """Tempo changes of a chart.

    Parameters
    ----------
    resolution : int
        Ticks per quarter-note beat.
    ticks : tuple[int, ...]
        Tick of each tempo change, strictly ascending, the first 0.
    beat_s : tuple[float, ...]
        Seconds per beat from the matching change on (> 0).

    Examples
    --------
    >>> tempo = TempoMap(480, (0, 960), (0.5, 0.25))  # 120 BPM for 2 beats, then 240 BPM
    >>> tempo.seconds(1440)
    1.25
    >>> tempo.tick_at(1.25)
    1440.0
    """

    resolution: int
    ticks: tuple[int, ...] = (0,)
    beat_s: tuple[float, ...] = (DEFAULT_BEAT_S,)

    def __post_init__(self):
        ticks, beat_s = tuple(int(t) for t in self.ticks), tuple(float(b) for b in self.beat_s)
        object.__setattr__(self, "ticks", ticks)
        object.__setattr__(self, "beat_s", beat_s)
        if self.resolution <= 0:
            raise ValueError(f"resolution must be > 0 ticks a beat, got {self.resolution}")
        if (not ticks or len(ticks) != len(beat_s) or ticks[0] != 0
                or any(b <= a for a, b in zip(ticks, ticks[1:]))):
            raise ValueError("tempo changes must start at tick 0 and be strictly ascending")
        if not all(b > 0 and math.isfinite(b) for b in beat_s):
            raise ValueError("every beat must last a finite time > 0")
        starts = [0.0]
        for i in range(1, len(ticks)):
            starts.append(starts[-1] + (ticks[i] - ticks[i - 1]) / self.resolution * beat_s[i - 1])
        object.__setattr__(self, "_starts", tuple(starts))

    @classmethod
    def from_changes(cls, resolution: int, changes) -> TempoMap:
        """Build from ``(tick, beat_s)`` pairs in any order; the last change at a tick wins.

        Without a change at tick 0 the file's tempo starts at 120 BPM (the MIDI default).
        """
        by_tick = {0: DEFAULT_BEAT_S}
        for tick, beat_s in sorted(changes, key=lambda c: c[0]):
            by_tick[int(tick)] = beat_s
        ticks = sorted(by_tick)
        # Drop changes that repeat the tempo in force: same map, fewer segments.
        kept = [ticks[0]]
        for tick in ticks[1:]:
            if by_tick[tick] != by_tick[kept[-1]]:
                kept.append(tick)
        return cls(resolution, tuple(kept), tuple(by_tick[t] for t in kept))

    @classmethod
    def from_beats(cls, beats, *, resolution: int = 480,
                   max_beat_s: float = MAX_EXPORT_BEAT_S) -> TempoMap:
        """A tempo map whose quarter-note beats fall on ``beats`` (seconds), for export.

        Tick 0 is time 0. The stretch before the first beat becomes whole beats at the first
        beat's tempo (a pickup; under half a beat joins the first beat, so the pickup's tempo
        stays within 2/3 to 2 times the first's); after the last beat the last tempo goes on.
        Beats longer than ``max_beat_s`` are split evenly so every tick stays short (see
        :data:`MAX_EXPORT_BEAT_S`). Beats of one length (to the microsecond: a steady tempo map, as
        :func:`analyzer.beats.steady_beats` publishes) are one tempo change, in whole microseconds
        a beat (what MIDI stores), rounded so that the error never accumulates: the end of each
        run of beats lands within 0.5 µs of its wanted time, the beats inside it within 0.5 µs
        × the beats since its start (0.5 ms after 1,000 beats).

        Parameters
        ----------
        beats : np.ndarray [shape=(n,)]
            Strictly ascending beat times, seconds, >= 0. Empty gives 120 BPM.
        resolution : int
            Ticks per beat.
        max_beat_s : float
            Longest beat written, seconds.
        """
        beats = np.asarray(beats, dtype=np.float64)
        if beats.size and (beats[0] < 0 or np.any(np.diff(beats) <= 0)):
            raise ValueError("beats must be >= 0 and strictly ascending")
        if beats.size == 0:
            return cls(resolution)
        first = beats[1] - beats[0] if beats.size > 1 else DEFAULT_BEAT_S
        if beats.size > 1 and 0 < beats[0] < first / 2:
            beats = beats[1:]      # under half a beat before the first: it joins the pickup
        grid = [0.0]
        if beats[0] > 0:
            pickup = max(1, round(beats[0] / first), math.ceil(beats[0] / max_beat_s - 1e-9))
            grid += [beats[0] * k / pickup for k in range(1, pickup + 1)]
        for a, b in zip(beats[:-1], beats[1:]):
            parts = math.ceil((b - a) / max_beat_s - 1e-9)
            grid += [a + (b - a) * k / parts for k in range(1, parts + 1)]
        # One tempo for each run of beats of one length (to the microsecond), in whole
        # microseconds a beat, each run's chosen so that its end lands on the wanted time.
        wanted = np.asarray(grid) * 1e6
        if wanted.size < 2:
            return cls.from_changes(resolution, [(0, min(DEFAULT_BEAT_S, max_beat_s))])
        lengths = np.diff(wanted)
        starts = [0]
        for k in range(1, lengths.size):
            if abs(lengths[k] - lengths[starts[-1]]) > 1.0:
                starts.append(k)
        changes, written = [], 0.0
        for start, end in zip(starts, starts[1:] + [lengths.size]):
            micros = max(1.0, round((wanted[end] - written) / (end - start)))
            changes.append((start * resolution, micros / 1e6))
            written += micros * (end - start)
        return cls.from_changes(resolution, changes)

    @property
    def microseconds(self) -> tuple[int, ...]:
        """Each segment's tempo as whole microseconds per beat (MIDI ``set_tempo``)."""
        return tuple(int(round(b * 1e6)) for b in self.beat_s)

    def seconds(self, tick) -> float:
        """Seconds at ``tick`` (ticks may be fractional; negative ticks use the first tempo)."""
        i = max(bisect.bisect_right(self.ticks, tick) - 1, 0)
        return self._starts[i] + (tick - self.ticks[i]) / self.resolution * self.beat_s[i]

    def tick_at(self, seconds: float) -> float:
        """Fractional tick at ``seconds``; round it to place an event."""
        i = max(bisect.bisect_right(self._starts, seconds) - 1, 0)
        return self.ticks[i] + (seconds - self._starts[i]) / self.beat_s[i] * self.resolution

    def beat_times(self, end_s: float, *, max_beats: int = MAX_BEATS) -> np.ndarray:
        """Times (seconds) of every quarter-note beat from tick 0 up to ``end_s``, shape (n,).

        Raises ValueError beyond ``max_beats`` beats (a hostile tempo of a beat a microsecond).
        """
        if end_s < 0:
            return np.zeros(0)
        n = int(self.tick_at(end_s) // self.resolution) + 2  # one spare: rounding at end_s
        if n > max_beats:
            raise ValueError(f"the tempo map has more than {max_beats} beats before {end_s:.1f} s")
        times = np.array([self.seconds(k * self.resolution) for k in range(n)], np.float64)
        return times[times <= end_s]

    def bpm_changes(self) -> list[tuple[float, float]]:
        """``(beat, bpm)`` of each segment, beats counted from tick 0 (StepMania's ``#BPMS``)."""
        return [(t / self.resolution, 60.0 / b) for t, b in zip(self.ticks, self.beat_s)]

    def segment_starts(self) -> tuple[float, ...]:
        """Seconds at which each tempo segment starts (osu! timing points)."""
        return self._starts

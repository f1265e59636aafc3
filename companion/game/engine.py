"""The game engine: judges lane presses against a track's notes. Knows nothing of audio or UI.

Driven from outside, like YARG.Core's engines, so the live path, replays and tests run the same
code::

    engine = GameEngine(chart.track("expert"))
    engine.queue_input(lane=2, pressed=True, time=1.012)     # chart seconds
    engine.queue_input(lane=2, pressed=False, time=1.100)
    for j in engine.update(1.2):                              # everything up to 1.2 s is final
        print(j.note_index, j.result, j.error_ms)

Rules
-----
- A press in a lane hits the earliest unjudged note of that lane whose Good window contains the
  press; presses outside every window are ignored (counted in :attr:`GameEngine.stray_presses`).
- A chord (notes starting within :data:`CHORD_EPS_S` of each other) is hit only when every one of
  its lanes is pressed within the window; its notes all take the worst of their presses' results.
  When the window closes first, all its notes miss.
- A note nobody hit misses when its window closes (``time > note.t + good``).
- A sustain (``dur > 0``) whose head was hit earns :data:`SUSTAIN_POINTS_PER_S` per second of
  its length if its lane stays held until ``end - windows.release_ms``; releasing earlier drops it
  (no bonus, combo unaffected).
- Score: :data:`POINTS` per result times the combo multiplier (1x for hits 1-10 of a streak, 2x
  for 11-20, 3x for 21-30, 4x after), plus sustain bonuses. Accuracy weighs results by
  :data:`ACCURACY_WEIGHT` over the notes judged so far.

Inputs are applied in time order. An input stamped earlier than the time the engine has already
reached is applied at that time (it arrived late; the past is final), so results depend only on
the sequence of applied inputs, which ``on_input`` reports: recording it gives exact replays.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from chart_store.chart import Note, Track

__all__ = [
    "Windows", "InputEvent", "Judgement", "SustainResult", "Results", "GameEngine", "GameError",
    "POINTS", "ACCURACY_WEIGHT", "SUSTAIN_POINTS_PER_S", "CHORD_EPS_S", "NoteState",
]

Result = Literal["perfect", "great", "good", "miss"]

#: Points per note before the combo multiplier.
POINTS = {"perfect": 100, "great": 70, "good": 40, "miss": 0}
#: Weight of each result in the accuracy figure (0..1).
ACCURACY_WEIGHT = {"perfect": 1.0, "great": 0.7, "good": 0.4, "miss": 0.0}
#: Sustain bonus, points per second of the sustain's length (not multiplied).
SUSTAIN_POINTS_PER_S = 50
#: Notes starting closer than this form one chord.
CHORD_EPS_S = 1e-3
_MAX_MULTIPLIER, _STREAK_PER_STEP = 4, 10


class GameError(ValueError):
    """Bad engine parameters (windows not ascending, negative lane...)."""


class NoteState:
    """Values of :attr:`GameEngine.note_states`."""

    PENDING, HIT, MISSED, SKIPPED = 0, 1, 2, 3


@dataclass(frozen=True)
class Windows:
    """Judgement windows, half-widths in milliseconds (a press within ±perfect_ms is Perfect)."""

    perfect_ms: float = 25.0
    great_ms: float = 50.0
    good_ms: float = 90.0
    #: How early a sustain may be released and still count as held to its end.
    release_ms: float = 90.0

    def __post_init__(self):
        if not 0 < self.perfect_ms <= self.great_ms <= self.good_ms:
            raise GameError(f"windows must satisfy 0 < perfect <= great <= good, got "
                            f"{self.perfect_ms}, {self.great_ms}, {self.good_ms} ms")
        if self.release_ms < 0:
            raise GameError(f"release_ms must be >= 0, got {self.release_ms}")

    def classify(self, error_ms: float) -> Result:
        """The result of a press ``error_ms`` away from its note (miss outside Good)."""
        e = abs(error_ms)
        if e <= self.perfect_ms:
            return "perfect"
        if e <= self.great_ms:
            return "great"
        if e <= self.good_ms:
            return "good"
        return "miss"


@dataclass(frozen=True)
class InputEvent:
    """A lane key going down (``pressed``) or up at ``time`` chart seconds."""

    lane: int
    pressed: bool
    time: float


@dataclass(frozen=True)
class Judgement:
    """The verdict on one note.

    ``error_ms`` is press time minus note time (positive = late), None for a miss; ``time`` is
    when the verdict fell (the press, or the close of the window for a miss).
    """

    note_index: int
    note: Note
    result: Result
    error_ms: float | None
    time: float

    @property
    def hit(self) -> bool:
        return self.result != "miss"


@dataclass(frozen=True)
class SustainResult:
    """How a hit sustain ended: ``held`` to its end (bonus earned) or dropped at ``time``."""

    note_index: int
    note: Note
    held: bool
    time: float
    bonus: int


@dataclass(frozen=True)
class Results:
    """A run's totals (what the results screen and the high-score table show)."""

    score: int
    accuracy: float
    hits: int
    misses: int
    perfect: int
    great: int
    good: int
    max_combo: int
    notes: int
    sustains_held: int
    sustains: int

    @property
    def judged(self) -> int:
        return self.hits + self.misses


@dataclass
class _Chord:
    t: float
    indices: tuple[int, ...]
    lanes: tuple[int, ...]
    errors: dict[int, float] = field(default_factory=dict)  # lane -> press error (ms)
    done: bool = False


class GameEngine:
    """Judges one track. See the module docstring for the rules.

    Parameters
    ----------
    track : chart_store.chart.Track
        The notes to play (any lanes).
    windows : Windows
        Judgement windows.
    on_input : callable, optional
        Called with each :class:`InputEvent` as it is applied (time possibly clamped, see the
        module docstring); :class:`companion.game.players.InputRecorder` records replays from it.
    """

    def __init__(self, track: Track, *, windows: Windows = Windows(),
                 on_input: Callable[[InputEvent], None] | None = None):
        self.track = track if isinstance(track, Track) else Track(tuple(track))
        self.windows = windows
        self._on_input = on_input
        self._good_s = windows.good_ms / 1000.0
        self._chords = self._group_chords(self.track.notes)
        self._chord_of = np.empty(len(self.track), dtype=np.int64)
        for c, chord in enumerate(self._chords):
            self._chord_of[list(chord.indices)] = c
        self._states = np.zeros(len(self.track), dtype=np.int8)
        self._queue: list[tuple[float, int, InputEvent]] = []
        self._seq = itertools.count()
        self._first_open = 0          # chords before this index are all done
        self._time = -np.inf          # everything up to here is final
        self._pressed: set[int] = set()
        self._held: dict[int, int] = {}  # lane -> note index of the sustain being held
        self.judgements: list[Judgement] = []
        self.sustain_results: list[SustainResult] = []
        self.score = 0
        self.combo = 0
        self.max_combo = 0
        self.stray_presses = 0
        self._counts = dict.fromkeys(POINTS, 0)
        self._weight_sum = 0.0

    @staticmethod
    def _group_chords(notes: tuple[Note, ...]) -> list[_Chord]:
        chords: list[_Chord] = []
        for i, note in enumerate(notes):
            last = chords[-1] if chords else None
            if last is not None and note.t - last.t < CHORD_EPS_S and note.lane not in last.lanes:
                last.indices += (i,)
                last.lanes += (note.lane,)
            else:
                chords.append(_Chord(note.t, (i,), (note.lane,)))
        return chords

    # -- driving ---------------------------------------------------------------------------
    def queue_input(self, lane: int, pressed: bool, time: float) -> None:
        """Queue a lane key going down or up at ``time`` (chart seconds); applied by update()."""
        if lane < 0:
            raise GameError(f"lane must be >= 0, got {lane}")
        event = InputEvent(int(lane), bool(pressed), float(time))
        heapq.heappush(self._queue, (event.time, next(self._seq), event))

    def update(self, time: float) -> list[Judgement]:
        """Apply the queued inputs up to ``time`` and close the windows that ended before it.

        Returns the judgements that fell, in time order. Inputs stamped after ``time`` stay
        queued.
        """
        start = len(self.judgements)
        while self._queue and self._queue[0][0] <= time:
            _, _, event = heapq.heappop(self._queue)
            if event.time < self._time:
                event = InputEvent(event.lane, event.pressed, self._time)
            self._advance(event.time)
            self._apply(event)
        self._advance(time)
        return self.judgements[start:]

    def skip_to(self, time: float) -> None:
        """Leave every unjudged note starting before ``time`` unjudged for good (not missed).

        For joining a song part-way or after a seek: notes the player never had a chance at do
        not count. Held sustains are let go without a verdict.
        """
        self._held.clear()
        for chord in self._chords[self._first_open:]:
            if chord.t >= time:
                break
            if not chord.done:
                chord.done = True
                self._states[list(chord.indices)] = NoteState.SKIPPED
        self._queue = [item for item in self._queue if item[0] >= time]
        heapq.heapify(self._queue)
        self._time = max(self._time, time)
        self._advance_first_open()

    # -- state -----------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """The time up to which everything is final (-inf before the first update)."""
        return self._time

    @property
    def note_states(self) -> np.ndarray:
        """Per-note :class:`NoteState` codes, shape (notes,), read-only."""
        view = self._states.view()
        view.setflags(write=False)
        return view

    @property
    def pressed_lanes(self) -> frozenset[int]:
        """Lanes whose key is down."""
        return frozenset(self._pressed)

    @property
    def held_sustains(self) -> dict[int, int]:
        """Lane -> index of the sustain note being held in it."""
        return dict(self._held)

    @property
    def hits(self) -> int:
        return self._counts["perfect"] + self._counts["great"] + self._counts["good"]

    @property
    def misses(self) -> int:
        return self._counts["miss"]

    @property
    def accuracy(self) -> float:
        """Weighted share of the judged notes, 0..1 (1.0 before any note is judged)."""
        judged = self.hits + self.misses
        return self._weight_sum / judged if judged else 1.0

    @property
    def multiplier(self) -> int:
        """The multiplier the next hit gets."""
        return min(1 + self.combo // _STREAK_PER_STEP, _MAX_MULTIPLIER)

    @property
    def finished(self) -> bool:
        """Every note judged or skipped and no sustain still held."""
        return self._first_open >= len(self._chords) and not self._held

    def results(self) -> Results:
        """The totals so far."""
        sustains = int(np.count_nonzero(self.track.durations))
        return Results(
            score=self.score, accuracy=self.accuracy, hits=self.hits, misses=self.misses,
            perfect=self._counts["perfect"], great=self._counts["great"],
            good=self._counts["good"], max_combo=self.max_combo, notes=len(self.track),
            sustains_held=sum(1 for s in self.sustain_results if s.held), sustains=sustains)

    # -- internals -------------------------------------------------------------------------
    def _advance(self, time: float) -> None:
        """Close chord windows that ended before ``time``; finish sustains that reached it."""
        for lane, index in list(self._held.items()):
            note = self.track.notes[index]
            if note.end <= time:
                self._finish_sustain(lane, note.end, held=True)
        for chord in self._chords[self._first_open:]:
            if chord.t - self._good_s >= time:
                break
            if not chord.done and chord.t + self._good_s < time:
                self._judge(chord, "miss", chord.t + self._good_s)
        self._advance_first_open()
        self._time = max(self._time, time)

    def _advance_first_open(self) -> None:
        while self._first_open < len(self._chords) and self._chords[self._first_open].done:
            self._first_open += 1

    def _apply(self, event: InputEvent) -> None:
        if self._on_input is not None:
            self._on_input(event)
        lane, t = event.lane, event.time
        if not event.pressed:
            self._pressed.discard(lane)
            if lane in self._held:
                self._finish_sustain(lane, t, held=False)
            return
        if lane in self._pressed:  # key repeat: not a new press
            return
        self._pressed.add(lane)
        for chord in self._chords[self._first_open:]:
            if chord.t - self._good_s > t:
                break
            if chord.done or lane not in chord.lanes or lane in chord.errors:
                continue
            if t - chord.t > self._good_s:
                continue
            chord.errors[lane] = (t - chord.t) * 1000.0
            if len(chord.errors) == len(chord.lanes):
                worst = max(chord.errors.values(), key=abs)
                self._judge(chord, self.windows.classify(worst), t)
            return
        self.stray_presses += 1

    def _judge(self, chord: _Chord, result: Result, time: float) -> None:
        chord.done = True
        hit = result != "miss"
        for index, lane in zip(chord.indices, chord.lanes):
            note = self.track.notes[index]
            if hit:
                self.combo += 1
                self.max_combo = max(self.max_combo, self.combo)
                self.score += POINTS[result] * min(1 + (self.combo - 1) // _STREAK_PER_STEP,
                                                   _MAX_MULTIPLIER)
                if note.dur > 0:
                    if lane in self._pressed:
                        self._held[lane] = index
                    else:  # a chord lane let go before the chord completed: nothing to hold
                        self.sustain_results.append(SustainResult(index, note, False, time, 0))
            else:
                self.combo = 0
            self._counts[result] += 1
            self._weight_sum += ACCURACY_WEIGHT[result]
            self._states[index] = NoteState.HIT if hit else NoteState.MISSED
            self.judgements.append(Judgement(index, note, result,
                                             chord.errors[lane] if hit else None, time))

    def _finish_sustain(self, lane: int, time: float, *, held: bool) -> None:
        index = self._held.pop(lane)
        note = self.track.notes[index]
        held = held or time >= note.end - self.windows.release_ms / 1000.0
        bonus = int(round(SUSTAIN_POINTS_PER_S * note.dur)) if held else 0
        self.score += bonus
        self.sustain_results.append(SustainResult(index, note, held, min(time, note.end), bonus))

"""What the overlay reads: an immutable snapshot of the game, published by the live engine.

The live engine builds a :class:`GameSnapshot` whenever something changes (a few times a second
at least, and after each batch of judgements) and puts it in a :class:`StateBox`; the overlay
reads the latest one every frame and extrapolates the game clock from it::

    box = StateBox()
    box.publish(snapshot_from_engine(engine, status="synced", game_time=t,
                                     wall_time=time.monotonic(), title="Song"))
    run_overlay(box.get, style, keys)            # in the main thread
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from chart_store.chart import Track
from companion.game.engine import GameEngine, Judgement, NoteState, Results

__all__ = ["STATUSES", "GameSnapshot", "StateBox", "snapshot_from_engine", "DrawState"]

#: The states a player meets, in the order they usually come.
STATUSES = ("waiting", "identifying", "recording", "synced", "paused", "ended")


class DrawState:
    """Per-note codes the renderer understands: :class:`NoteState` plus sustain states."""

    PENDING, HIT, MISSED, SKIPPED = (NoteState.PENDING, NoteState.HIT, NoteState.MISSED,
                                     NoteState.SKIPPED)
    HOLDING, DROPPED = 4, 5


@dataclass(frozen=True, eq=False)
class GameSnapshot:
    """The game as the overlay draws it.

    ``game_time`` is the chart time (seconds) at ``wall_time`` (``time.monotonic()``); while
    ``status`` is "synced" the clock runs at ``rate`` chart seconds per second.
    ``draw_states`` holds one :class:`DrawState` code per note of ``track`` (None: all pending);
    ``beats`` are the chart's beat times (seconds), drawn as lines under the notes;
    ``phrases`` the chart's :class:`~chart_store.chart.Phrase` s (notes in a star power phrase
    are drawn in the style's ``star_color``).
    """

    status: str = "waiting"
    game_time: float = 0.0
    wall_time: float = 0.0
    rate: float = 1.0
    track: Track | None = None
    beats: np.ndarray | None = None
    phrases: tuple = ()
    lanes: int = 5
    title: str = ""
    artist: str = ""
    duration_s: float = 0.0
    chart_source: str = ""
    draw_states: np.ndarray | None = None
    pressed: frozenset = frozenset()
    last_judgement: Judgement | None = None
    score: int = 0
    combo: int = 0
    multiplier: int = 1
    accuracy: float = 1.0
    hits: int = 0
    misses: int = 0
    results: Results | None = None
    message: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def time_at(self, wall_time: float) -> float:
        """The game time at ``wall_time`` (monotonic seconds): runs only while synced."""
        if self.status != "synced":
            return self.game_time
        return self.game_time + self.rate * (wall_time - self.wall_time)


class StateBox:
    """The latest snapshot, handed from the engine thread to the overlay thread."""

    def __init__(self, snapshot: GameSnapshot | None = None):
        self._lock = threading.Lock()
        self._snapshot = snapshot or GameSnapshot()

    def publish(self, snapshot: GameSnapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def get(self) -> GameSnapshot:
        with self._lock:
            return self._snapshot


def snapshot_from_engine(engine: GameEngine, *, status: str, game_time: float, wall_time: float,
                         rate: float = 1.0, lanes: int | None = None,
                         beats: np.ndarray | None = None, phrases: tuple = (), title: str = "",
                         artist: str = "", duration_s: float = 0.0, chart_source: str = "",
                         message: str = "") -> GameSnapshot:
    """A snapshot of ``engine``'s state (note states with sustains, score, last judgement)."""
    track = engine.track
    states = engine.note_states.copy()
    # Hit sustains are being held, were held to their end, or were dropped.
    hit_sustains = (track.durations > 0) & (states == NoteState.HIT)
    if hit_sustains.any():
        held = [r.note_index for r in engine.sustain_results if r.held]
        dropped = hit_sustains.copy()
        dropped[held] = False
        states[dropped] = DrawState.DROPPED
        states[[i for i in engine.held_sustains.values() if hit_sustains[i]]] = DrawState.HOLDING
    if lanes is None:
        lanes = max((n.lane for n in track), default=4) + 1
    return GameSnapshot(
        status=status, game_time=game_time, wall_time=wall_time, rate=rate, track=track,
        beats=beats, phrases=phrases, lanes=max(lanes, 4), title=title, artist=artist,
        duration_s=duration_s,
        chart_source=chart_source, draw_states=states, pressed=engine.pressed_lanes,
        last_judgement=engine.judgements[-1] if engine.judgements else None,
        score=engine.score, combo=engine.combo, multiplier=engine.multiplier,
        accuracy=engine.accuracy, hits=engine.hits, misses=engine.misses,
        results=engine.results() if status == "ended" else None, message=message)

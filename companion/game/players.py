"""Where a game's inputs come from: a person at the keyboard, a robot, or a recording.

Every player has ``poll(now) -> list[InputEvent]``: the inputs stamped at or before ``now``
(chart seconds), in time order, each returned once. :func:`feed` hands them to a
:class:`~companion.game.engine.GameEngine` and updates it::

    player = make_player("autoplay", track=track)
    judgements = feed(engine, player, now=12.5)

- :class:`KeyboardPlayer` — lane keys from the overlay, through a thread-safe queue of
  :class:`KeyEvent` (stamped with ``time.monotonic()``), mapped to chart time by a clock function;
- :class:`AutoPlayer` — presses every note on time (holds sustains to their end);
- :class:`MissAllPlayer` — never presses anything;
- :class:`ReplayPlayer` — plays back a replay file written by :class:`InputRecorder`.

A replay file is JSON Lines: a header ``{"format": "loopjam-replay", "version": 1, ...}`` then
one ``{"lane": i, "pressed": bool, "t": seconds}`` per applied input.
"""
from __future__ import annotations

import bisect
import json
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from chart_store.chart import Track
from companion.game.engine import GameEngine, InputEvent, Judgement

__all__ = [
    "Player", "KeyEvent", "KeyboardPlayer", "AutoPlayer", "MissAllPlayer", "ReplayPlayer",
    "InputRecorder", "ReplayError", "PlayerSpecError", "make_player", "check_player", "feed",
    "default_keys", "key_symbol", "KEY_NAMES", "PLAYER_KINDS", "REPLAY_FORMAT", "REPLAY_VERSION",
]

REPLAY_FORMAT, REPLAY_VERSION = "loopjam-replay", 1
PLAYER_KINDS = ("keyboard", "autoplay", "miss-all", "replay:FILE")

# Home-row layouts, split between the hands, space in the middle for odd counts.
_DEFAULT_KEYS = {
    4: ("d", "f", "j", "k"),
    5: ("d", "f", "space", "j", "k"),
    6: ("s", "d", "f", "j", "k", "l"),
    7: ("s", "d", "f", "space", "j", "k", "l"),
}


#: Key names a lane can be played with (``game.keys``): letters, digits, the keypad's digits,
#: and the keys a keyboard player reaches for. Lower case; see :func:`key_symbol`.
KEY_NAMES = frozenset(
    [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    + [f"num_{d}" for d in range(10)] + [f"f{n}" for n in range(1, 13)]
    + "space enter return tab backspace semicolon comma period slash backslash apostrophe "
      "grave minus equal bracketleft bracketright left right up down lshift rshift lctrl "
      "rctrl lalt ralt home end pageup pagedown insert delete num_enter".split())


def key_symbol(name: str) -> str:
    """The name of a key's symbol in ``pyglet.window.key`` ("d" -> "D", "1" -> "_1").

    Examples
    --------
    >>> key_symbol("space"), key_symbol("7"), key_symbol("num_7")
    ('SPACE', '_7', 'NUM_7')
    """
    return f"_{name}" if name.isdigit() else name.upper()


class ReplayError(ValueError):
    """A replay file that cannot be read (names the file and line)."""


class PlayerSpecError(ValueError):
    """A ``--player`` value that names no player."""


def default_keys(lanes: int) -> tuple[str, ...]:
    """The default key names (pyglet symbol names, lower case) for ``lanes`` lanes (4..7)."""
    try:
        return _DEFAULT_KEYS[lanes]
    except KeyError:
        raise PlayerSpecError(f"no default keys for {lanes} lanes (4..7)") from None


class Player(Protocol):
    name: str

    def poll(self, now: float) -> list[InputEvent]:
        """Inputs stamped at or before ``now`` not returned before, in time order."""


def feed(engine: GameEngine, player: Player, now: float) -> list[Judgement]:
    """Queue ``player``'s inputs up to ``now`` into ``engine`` and update it to ``now``."""
    for event in player.poll(now):
        engine.queue_input(event.lane, event.pressed, event.time)
    return engine.update(now)


class _ScheduledPlayer:
    """Plays a fixed, time-sorted list of inputs."""

    name = "scheduled"

    def __init__(self, events: list[InputEvent]):
        self.events = sorted(events, key=lambda e: e.time)
        self._times = [e.time for e in self.events]
        self._next = 0

    def poll(self, now: float) -> list[InputEvent]:
        end = bisect.bisect_right(self._times, now, lo=self._next)
        out, self._next = self.events[self._next:end], end
        return out


class AutoPlayer(_ScheduledPlayer):
    """Presses every note at its time and releases at its end (taps after ``tap_s``).

    A release always comes before the lane's next press, so back-to-back notes all count.
    """

    name = "autoplay"

    def __init__(self, track: Track, *, tap_s: float = 0.05):
        by_lane: dict[int, list] = {}
        for note in track:
            by_lane.setdefault(note.lane, []).append(note)
        events = []
        for lane, notes in by_lane.items():
            for note, nxt in zip(notes, notes[1:] + [None]):
                release = max(note.end, note.t + tap_s)
                if nxt is not None:
                    release = min(release, nxt.t - min(tap_s, (nxt.t - note.t) / 2))
                events += [InputEvent(lane, True, note.t), InputEvent(lane, False, release)]
        super().__init__(events)


class MissAllPlayer:
    """Never presses anything: every note misses."""

    name = "miss-all"

    def poll(self, now: float) -> list[InputEvent]:
        return []


class ReplayPlayer(_ScheduledPlayer):
    """Plays back the inputs of a replay file (see the module docstring for the format)."""

    name = "replay"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.header: dict = {}
        events = []
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ReplayError(f"{self.path}: {error.strerror or error}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if "format" in obj:
                    if obj["format"] != REPLAY_FORMAT or obj.get("version") != REPLAY_VERSION:
                        raise ValueError(f"not a {REPLAY_FORMAT} v{REPLAY_VERSION} file")
                    self.header = obj
                    continue
                lane, pressed, t = obj["lane"], obj["pressed"], obj["t"]
                if not isinstance(lane, int) or lane < 0 or not isinstance(pressed, bool):
                    raise ValueError("lane must be an int >= 0 and pressed a bool")
                events.append(InputEvent(lane, pressed, float(t)))
            except KeyError as error:
                raise ReplayError(f"{self.path}:{number}: no {error} in {line.strip()[:60]}"
                                  ) from None
            except (ValueError, TypeError) as error:
                raise ReplayError(f"{self.path}:{number}: {error}") from None
        super().__init__(events)


@dataclass(frozen=True)
class KeyEvent:
    """A lane key from the overlay: ``wall_time`` is ``time.monotonic()`` at the key event."""

    lane: int
    pressed: bool
    wall_time: float


class KeyboardPlayer:
    """Inputs from the overlay's key events.

    Parameters
    ----------
    keys : queue.SimpleQueue of KeyEvent
        Filled by the overlay's window thread; drained here.
    clock : callable
        Maps a ``time.monotonic()`` value to chart seconds (the live engine's game clock, which
        already includes the input calibration offset).
    """

    name = "keyboard"

    def __init__(self, keys: "queue.SimpleQueue[KeyEvent]", *, clock: Callable[[float], float]):
        self.keys = keys
        self.clock = clock
        self._pending: list[InputEvent] = []

    def poll(self, now: float) -> list[InputEvent]:
        while True:
            try:
                key = self.keys.get_nowait()
            except queue.Empty:
                break
            self._pending.append(InputEvent(key.lane, key.pressed, self.clock(key.wall_time)))
        self._pending.sort(key=lambda e: e.time)
        split = bisect.bisect_right([e.time for e in self._pending], now)
        out, self._pending = self._pending[:split], self._pending[split:]
        return out


class InputRecorder:
    """Writes the inputs an engine applies to a replay file; pass it as ``on_input``.

    Examples
    --------
    >>> with InputRecorder(path, chart_id=chart.id, difficulty="expert") as rec:  # doctest: +SKIP
    ...     engine = GameEngine(track, on_input=rec)
    """

    def __init__(self, path: str | Path, **header):
        self.path = Path(path)
        self._file = self.path.open("w", encoding="utf-8")
        self._write({"format": REPLAY_FORMAT, "version": REPLAY_VERSION, **header})

    def _write(self, obj: dict) -> None:
        self._file.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def __call__(self, event: InputEvent) -> None:
        self._write({"lane": event.lane, "pressed": event.pressed, "t": event.time})

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_player(spec: str, *, track: Track | None = None,
                keys: "queue.SimpleQueue[KeyEvent] | None" = None,
                clock: Callable[[float], float] | None = None) -> Player:
    """Build the player a ``--player`` value names (one of :data:`PLAYER_KINDS`).

    ``track`` is needed by autoplay, ``keys`` and ``clock`` by keyboard.
    """
    if spec == "keyboard":
        if keys is None or clock is None:
            raise PlayerSpecError("the keyboard player needs the overlay's key queue and a clock")
        return KeyboardPlayer(keys, clock=clock)
    if spec == "autoplay":
        if track is None:
            raise PlayerSpecError("autoplay needs the track to play")
        return AutoPlayer(track)
    if spec == "miss-all":
        return MissAllPlayer()
    if spec.startswith("replay:") and len(spec) > len("replay:"):
        return ReplayPlayer(spec[len("replay:"):])
    raise PlayerSpecError(f"unknown player {spec!r}; use one of {', '.join(PLAYER_KINDS)}")


def check_player(spec: str) -> None:
    """Raise now what :func:`make_player` would raise for ``spec`` when the first song starts:
    :class:`PlayerSpecError` for an unknown kind, :class:`ReplayError` for a replay file that
    is missing or malformed."""
    if spec.startswith("replay:") and len(spec) > len("replay:"):
        ReplayPlayer(spec[len("replay:"):])
    elif spec not in PLAYER_KINDS:
        make_player(spec)

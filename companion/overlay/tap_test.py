"""The tap-along calibration screen (pyglet): tap a key on each click (audio) or flash (video).

:func:`run_tap_test` opens a "LoopJam calibration" window, plays clicks through an audio sink
(``kind="audio"``) or flashes the window (``kind="video"``) at a steady tempo, records the taps
and returns :class:`TapTestResult` with :func:`companion.game.calibration.offset_from_taps`'s
estimate. Times are ``time.monotonic()`` seconds. For audio, the wall time each click is heard
is estimated from the sink: a block whose ``write`` returned at ``w`` ends being heard at
``w + latency`` (the backend's reported output latency), so the offset measured is what the
backend does not report (speakers, Bluetooth) plus the player's own delay.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyglet

from companion.game.calibration import TapCalibration, click_track, offset_from_taps

__all__ = ["TapTestResult", "ClickPlayer", "run_tap_test", "WINDOW_TITLE"]

WINDOW_TITLE = "LoopJam calibration"
FLASH_S = 0.08


@dataclass(frozen=True)
class TapTestResult:
    kind: str
    taps: np.ndarray          # monotonic seconds
    beats: np.ndarray         # monotonic seconds each click was heard / flash shown
    calibration: TapCalibration | None
    latency_ms: float         # the audio backend's reported output latency (0 for video)
    error: str = ""


class ClickPlayer(threading.Thread):
    """Writes a click track to ``sink`` block by block, paced to the wall clock, and estimates
    when its first sample is heard (monotonic seconds) from when each write returns."""

    def __init__(self, sink, y: np.ndarray, *, block: int = 1024, lead_s: float = 0.1):
        super().__init__(name="loopjam-clicks", daemon=True)
        self.sink, self.block, self.lead_s = sink, block, lead_s
        channels = getattr(sink, "channels", 1)
        self.frames = np.repeat(y[:, None], channels, axis=1).astype(np.float32)
        self.latency_s = sink.latency_samples / sink.sr   # as requested, until it plays
        self.stop_event = threading.Event()
        self._estimates: list[float] = []
        self.t0 = time.monotonic() + lead_s  # when the first sample is due

    def run(self) -> None:
        t0 = self.t0
        for start in range(0, len(self.frames), self.block):
            if self.stop_event.is_set():
                break
            end = min(start + self.block, len(self.frames))
            # Block `end` must be queued `latency` before it is due; a sink that never blocks
            # (the null one) is paced here instead of by the device.
            due = t0 + end / self.sink.sr - self.latency_s
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            self.sink.write(self.frames[start:end])
            # A sound server states its real latency once the stream plays (PulseAudio's
            # measured one replaces the requested buffer): the live clock uses that one too.
            self.latency_s = self.sink.latency_samples / self.sink.sr
            # When write returns the queue holds `latency` of audio up to `end`.
            self._estimates.append(time.monotonic() + self.latency_s - end / self.sink.sr)
        self.sink.close()

    @property
    def start_heard(self) -> float:
        """Estimated monotonic time the first sample was heard."""
        return float(np.median(self._estimates))


def run_tap_test(*, kind: str = "audio", bpm: float = 100.0, beats: int = 24,
                 sink: str | None = None, backend: str | None = None, key: str = "space",
                 width: int = 480, height: int = 240,
                 on_beats: Callable[[np.ndarray], None] | None = None) -> TapTestResult:
    """Open the calibration window and run one tap test (blocks ~beats * 60 / bpm + 3 s).
    ``sink`` and ``backend`` (the config's ``audio.backend``) choose the click's output.

    ``on_beats`` is called once with the scheduled beat times (monotonic seconds) as soon as
    they are known (for audio, before the sink's timing refines them).
    """
    if kind not in ("audio", "video"):
        raise ValueError(f"kind must be audio or video, got {kind!r}")
    period = 60.0 / bpm
    lead_in = 1.5
    offsets = lead_in + np.arange(beats) * period
    taps: list[float] = []
    player = None
    latency_ms = 0.0
    if kind == "audio":
        from companion.audio import open_sink
        y, _ = click_track(sr=48000, bpm=bpm, beats=beats, lead_in_s=lead_in)
        out = open_sink(sink, sr=48000, channels=2, block_frames=1024, buffer_frames=4096,
                        preferred=backend)
        latency_ms = 1000.0 * out.latency_samples / out.sr
        player = ClickPlayer(out, y)
    window = pyglet.window.Window(width, height, caption=WINDOW_TITLE)
    symbol = getattr(pyglet.window.key, key.upper())
    batch = pyglet.graphics.Batch()
    flash = pyglet.shapes.Rectangle(0, 0, width, height, color=(255, 255, 255, 255), batch=batch)
    flash.visible = False
    what = "click" if kind == "audio" else "flash"
    label = pyglet.text.Label(f"Tap {key.upper()} on every {what}", x=width // 2,
                              y=height // 2 + 20, anchor_x="center", anchor_y="center",
                              font_size=16, batch=batch)
    count = pyglet.text.Label("", x=width // 2, y=height // 2 - 20, anchor_x="center",
                              anchor_y="center", font_size=13, batch=batch)
    start = time.monotonic() if player is None else player.t0
    if player is not None:
        player.start()
    end_at = start + offsets[-1] + 1.5
    if on_beats is not None:
        on_beats(start + offsets)

    @window.event
    def on_key_press(sym, modifiers):
        if sym == symbol:
            taps.append(time.monotonic())
        return pyglet.event.EVENT_HANDLED

    @window.event
    def on_draw():
        now = time.monotonic()
        window.clear()
        if kind == "video":
            since = (now - start - lead_in) % period
            flash.visible = now - start >= lead_in - 0.01 and since < FLASH_S \
                and now < end_at - 1.4
        text = f"{len(taps)} taps"
        if count.text != text:  # re-laying out text every frame would delay the key events
            count.text = text
        batch.draw()

    def tick(dt):
        if time.monotonic() >= end_at:
            window.close()
            pyglet.app.exit()

    pyglet.clock.schedule_interval(tick, 0.05)
    try:
        pyglet.app.run(1 / 120)
    finally:
        pyglet.clock.unschedule(tick)
        if player is not None:
            player.stop_event.set()
            player.join(5)
    if player is not None:
        latency_ms = 1000.0 * player.latency_s
    base = player.start_heard if player is not None else start
    beat_times = base + offsets
    tap_times = np.array(taps)
    try:
        calibration = offset_from_taps(taps=tap_times, beats=beat_times)
        error = ""
    except ValueError as exc:
        calibration, error = None, str(exc)
    return TapTestResult(kind, tap_times, beat_times, calibration, latency_ms, error)

"""The overlay window: borderless, transparent, always on top, titled "LoopJam".

:func:`run_overlay` runs it in the calling thread (the main thread: some platforms insist) until
the window is closed or ``control.stop`` is set. Every frame it reads the latest snapshot,
extrapolates the game clock to *now* (plus the video calibration offset) and draws; lane keys go
to the keyboard player's queue as :class:`~companion.game.players.KeyEvent` stamped with
``time.monotonic()``.

The window is pyglet's overlay style (borderless, transparent, kept above other windows); with
``click_through`` the mouse passes through it, otherwise it takes clicks and the keyboard focus.
"""
from __future__ import annotations

import gc
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from companion.overlay._pyglet import pyglet
from pyglet import gl  # noqa: E402  (after _pyglet, which sets pyglet's GL options)
from pyglet.window import key as keys_

from companion.game.calibration import Offsets, draw_time
from companion.game.players import KeyEvent, default_keys, key_symbol
from companion.overlay.render import OverlayRenderer
from companion.overlay.state import GameSnapshot
from companion.overlay.style import OverlayStyle

__all__ = ["OverlayControl", "OverlayWindow", "OverlayUnavailable", "run_overlay",
           "overlay_settings", "WINDOW_TITLE"]

WINDOW_TITLE = "LoopJam"


class OverlayUnavailable(RuntimeError):
    """The overlay window cannot be opened here (no display, no OpenGL context)."""


@dataclass
class OverlayControl:
    """Thread-safe switches the tray flips: show/hide and stop."""

    visible: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        self.visible.set()


def _take_mouse_back(window: pyglet.window.Window) -> None:
    """Undo the overlay style's mouse pass-through so the window can take the keyboard focus."""
    if not hasattr(window, "_x_display"):
        window.set_mouse_passthrough(False)
        return
    # pyglet 2.1's X11 reset passes the display to libXext with the wrong ctypes type; make
    # the same call (input shape = the default, whole window) with a correct prototype.
    import ctypes
    import ctypes.util
    xext = ctypes.CDLL(ctypes.util.find_library("Xext") or "libXext.so.6")
    xext.XShapeCombineMask.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int,
                                       ctypes.c_int, ctypes.c_int, ctypes.c_ulong, ctypes.c_int]
    shape_input, shape_set = 2, 0
    xext.XShapeCombineMask(ctypes.cast(window._x_display, ctypes.c_void_p), window._window,
                           shape_input, 0, 0, 0, shape_set)


class OverlayWindow(pyglet.window.Window):
    """The overlay. ``state_source()`` returns the latest snapshot; ``keys[i]`` names lane i's
    key (pyglet symbol names, lower case, e.g. "d", "space")."""

    def __init__(self, state_source: Callable[[], GameSnapshot], style: OverlayStyle, *,
                 key_queue: "queue.SimpleQueue[KeyEvent] | None" = None,
                 keys: tuple[str, ...] | None = None, click_through: bool = False,
                 video_offset_ms: float = 0.0, control: OverlayControl | None = None,
                 vsync: bool = True):
        config = gl.Config(major_version=3, minor_version=3, double_buffer=True, alpha_size=8)
        try:
            # Overlay style: borderless, transparent framebuffer, kept above other windows.
            super().__init__(style.width, style.height, caption=WINDOW_TITLE, config=config,
                             style=self.WINDOW_STYLE_OVERLAY, vsync=vsync)
        except (pyglet.window.NoSuchConfigException, pyglet.gl.ContextException):
            # No transparent visual here: a plain borderless window still works.
            super().__init__(style.width, style.height, caption=WINDOW_TITLE, vsync=vsync,
                             style=self.WINDOW_STYLE_BORDERLESS,
                             config=gl.Config(major_version=3, minor_version=3,
                                              double_buffer=True))
        if not click_through:  # the overlay style lets the mouse through: take it back
            _take_mouse_back(self)
        if style.x is not None and style.y is not None:
            self.set_location(style.x, style.y)
        self.state_source = state_source
        self.key_queue = key_queue
        self.control = control or OverlayControl()
        self.offsets = Offsets(video_ms=video_offset_ms)
        self.renderer = OverlayRenderer(style)
        self.lane_of: dict[int, int] = {}
        self._keys = keys
        self.pressed: set[int] = set()
        self._map_keys(state_source().lanes)  # keys work before the first frame is drawn

    def _map_keys(self, lanes: int) -> None:
        names = self._keys if self._keys and len(self._keys) >= lanes else default_keys(lanes)
        self.lane_of = {getattr(keys_, key_symbol(name)): lane
                        for lane, name in enumerate(names[:lanes])}
        self._lanes = lanes

    def on_draw(self):
        snap = self.state_source()
        if snap.lanes != self._lanes:
            self._map_keys(snap.lanes)
        now = draw_time(snap.time_at(time.monotonic()), self.offsets)
        self.renderer.draw(snap, now, pressed=frozenset(self.pressed))

    def _key(self, symbol: int, pressed: bool) -> None:
        lane = self.lane_of.get(symbol)
        if lane is None:
            return
        (self.pressed.add if pressed else self.pressed.discard)(lane)
        if self.key_queue is not None:
            self.key_queue.put(KeyEvent(lane, pressed, time.monotonic()))

    def on_key_press(self, symbol, modifiers):
        self._key(symbol, True)
        return pyglet.event.EVENT_HANDLED  # no close on Escape: the tray quits

    def on_key_release(self, symbol, modifiers):
        self._key(symbol, False)

    def poll_control(self, dt: float = 0.0) -> None:
        if self.control.stop.is_set():
            self.close()
            pyglet.app.exit()
            return
        want = self.control.visible.is_set()
        if want != self.visible:
            self.set_visible(want)

    def on_close(self):
        self.renderer.delete()
        super().on_close()


def overlay_settings(config, *, player: str) -> dict:
    """:func:`run_overlay` keyword arguments from a :class:`companion.config.Config`: the look,
    the lane keys, the video offset, and click-through (``"auto"``: only when no one plays on
    the keyboard, since a click-through window cannot take the keyboard focus).

    Examples
    --------
    >>> run_overlay(box.get, key_queue=keys, control=control,          # doctest: +SKIP
    ...             **overlay_settings(load_config(), player="keyboard"))
    """
    style = config.overlay
    click = {"yes": True, "no": False}.get(style.click_through, player != "keyboard")
    return {"style": style, "keys": config.game.keys or None, "click_through": click,
            "video_offset_ms": config.offsets.video_ms}


def run_overlay(state_source: Callable[[], GameSnapshot], style: OverlayStyle = OverlayStyle(),
                key_queue: "queue.SimpleQueue[KeyEvent] | None" = None, *,
                keys: tuple[str, ...] | None = None, click_through: bool = False,
                video_offset_ms: float = 0.0, control: OverlayControl | None = None) -> None:
    """Open the overlay and draw until it is closed or ``control.stop`` is set (blocks).

    Parameters
    ----------
    state_source : callable
        Returns the latest :class:`GameSnapshot` (e.g. ``StateBox.get``); called every frame.
    style : OverlayStyle
        Look and placement.
    key_queue : queue.SimpleQueue, optional
        Receives lane :class:`KeyEvent` s for :class:`companion.game.players.KeyboardPlayer`.
    keys : tuple of str, optional
        Key name per lane (default :func:`companion.game.players.default_keys`).
    click_through : bool
        Let the mouse through (the window then cannot take the keyboard focus on most desktops).
    video_offset_ms : float
        Display lag to draw ahead of (see :mod:`companion.game.calibration`).
    control : OverlayControl, optional
        Show/hide and stop from other threads.

    Raises
    ------
    OverlayUnavailable
        When the window cannot be opened. An error while drawing is a bug, and propagates.
    """
    try:
        window = OverlayWindow(state_source, style, key_queue=key_queue, keys=keys,
                               click_through=click_through, video_offset_ms=video_offset_ms,
                               control=control)
    except Exception as error:  # pyglet's display, config and context errors differ by platform
        raise OverlayUnavailable(f"{type(error).__name__}: {error}") from error
    pyglet.clock.schedule_interval(window.poll_control, 0.05)
    # Everything set up so far (modules, the chart, the engine) lives as long as the window:
    # frozen, a full collection never walks it, which would stall a frame for milliseconds.
    gc.collect()
    gc.freeze()
    try:
        pyglet.app.run(1.0 / style.max_fps)
    finally:
        pyglet.clock.unschedule(window.poll_control)
        gc.unfreeze()

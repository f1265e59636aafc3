"""The falling-notes overlay. The only package that imports pyglet (in ``render``, ``window``
and ``tap_test``, which are imported only when a window is needed).

- :mod:`companion.overlay.state` — :class:`~companion.overlay.state.GameSnapshot`, the small
  immutable picture of the game the live engine publishes (game clock, track, note states,
  score, status) and :class:`~companion.overlay.state.StateBox` to hand it across threads;
- :mod:`companion.overlay.style` — :class:`~companion.overlay.style.OverlayStyle` (size,
  position, scroll speed, opacity, colours) and the geometry every drawing follows (pure
  functions, so tests predict pixel positions);
- :mod:`companion.overlay.render` — the batched OpenGL renderer, on screen and off screen
  (:class:`~companion.overlay.render.OffscreenRenderer`: a snapshot at a game time → RGBA);
- :mod:`companion.overlay.window` — :func:`~companion.overlay.window.run_overlay`, the
  borderless transparent always-on-top window that feeds key events to the keyboard player,
  and :func:`~companion.overlay.window.overlay_settings` (its options from the user's config);
- :mod:`companion.overlay.tap_test` — the tap-along calibration window (``loopjam calibrate
  --tap audio|video``).

The overlay never computes DSP or judges notes: it reads snapshots and draws them at the game
time extrapolated from the snapshot's clock, never by counting frames.
"""

"""Overlay frame time with 300 notes on screen, in a real window (vsync off).

Each frame draws a fresh snapshot time into the window's back buffer and swaps; the frame time
is from the start of drawing to after ``glFinish`` following the swap, so it includes the GPU
(or llvmpipe) work. Runs under Xvfb when no display is set.

    .venv/bin/python -m benchmarks.overlay.frame_time [--frames 600] [--notes 300] [--lanes 5]

Prints one JSON object: {"renderer", "notes_on_screen", "frames", "median_ms", "p99_ms", ...}.
Target: p99 <= 8 ms (>= 120 fps).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--notes", type=int, default=300, help="notes on screen at once")
    parser.add_argument("--lanes", type=int, default=5)
    parser.add_argument("--width", type=int, default=560)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args(argv)

    xvfb = None
    if not os.environ.get("DISPLAY"):
        from tests.fixtures.xvfb import start_xvfb
        xvfb, os.environ["DISPLAY"] = start_xvfb()
    try:
        return run(args)
    finally:
        if xvfb is not None:
            xvfb.terminate()


def run(args) -> int:
    import pyglet
    from pyglet import gl

    from chart_store.chart import Note, Track
    from companion.game.engine import GameEngine
    from companion.game.players import AutoPlayer, feed
    from companion.overlay.state import snapshot_from_engine
    from companion.overlay.style import OverlayStyle
    from companion.overlay.window import OverlayWindow

    style = OverlayStyle(width=args.width, height=args.height)
    # Dense enough that `notes` notes are always between the hit line and the top.
    span = style.lookahead_s()
    spacing = span / args.notes
    rng = np.random.default_rng(0)
    duration = args.frames / 60 + 2 * span + 2
    count = int(duration / spacing)
    notes = [Note(float(i * spacing), dur=0.3 if i % 9 == 0 else 0.0,
                  lane=int(rng.integers(0, args.lanes))) for i in range(count)]
    track = Track(tuple(notes))
    engine = GameEngine(track)
    player = AutoPlayer(track)
    state = {"snap": None}
    window = OverlayWindow(lambda: state["snap"], style, vsync=False)
    window.set_visible(True)
    renderer_name = gl.gl_info.get_renderer()
    times, on_screen = [], []
    t0 = span
    for frame in range(args.frames + 30):
        now = t0 + frame / 60
        feed(engine, player, now)  # judging is the engine's job; it runs here as live
        snap = snapshot_from_engine(engine, status="synced", game_time=now, wall_time=0.0,
                                    lanes=args.lanes, title="Benchmark", duration_s=duration)
        start = time.perf_counter()
        window.switch_to()
        window.dispatch_events()
        window.renderer.draw(snap, now)
        window.flip()
        gl.glFinish()
        elapsed = time.perf_counter() - start
        if frame >= 30:  # warm-up: shader compile, glyph cache
            times.append(elapsed * 1000)
            visible = track.index_range(now - 0.09, now + span)
            on_screen.append(len(visible))
    window.close()
    times = np.array(times)
    print(json.dumps({
        "renderer": renderer_name, "notes_on_screen": int(np.median(on_screen)),
        "frames": len(times), "size": [style.width, style.height],
        "median_ms": round(float(np.median(times)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
        "max_ms": round(float(times.max()), 3), "target_p99_ms": 8.0,
        "python": sys.version.split()[0],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

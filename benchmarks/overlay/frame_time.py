"""Overlay frame time with 300 notes on screen, in a real window (vsync off).

Each frame draws a new snapshot (the autoplay engine judging as it goes, so note states, score
and combo change every frame, which is the worst case for the HUD text) into the window's back
buffer and swaps. Three figures per frame:

- ``render``: drawing the frame, CPU and GPU (``draw`` then ``glFinish``): the overlay's cost;
- ``swap``: ``flip`` then ``glFinish``: presenting it. Under Xvfb this is a software copy of
  the whole window into the virtual screen, a cost of the test X server, not of the overlay;
- ``frame``: both;
- ``frame_cpu``: CPU time the process (all threads, llvmpipe's included) spent on the frame,
  which a busy shared machine inflates far less than the wall-clock figures.

Runs under Xvfb when no display is set.

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
    from pyglet import gl

    from chart_store.chart import Note, Track
    from companion.game.engine import GameEngine
    from companion.game.players import AutoPlayer, feed
    from companion.overlay.state import GameSnapshot, snapshot_from_engine
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
    window = OverlayWindow(lambda: GameSnapshot(lanes=args.lanes), style, vsync=False)
    window.set_visible(True)
    renderer_name = gl.gl_info.get_renderer()
    times, on_screen = {"render": [], "swap": [], "frame": [], "frame_cpu": []}, []
    t0 = span
    for frame in range(args.frames + 30):
        now = t0 + frame / 60
        feed(engine, player, now)  # judging is the engine's job; it runs here as live
        snap = snapshot_from_engine(engine, status="synced", game_time=now, wall_time=0.0,
                                    lanes=args.lanes, title="Benchmark", duration_s=duration)
        window.switch_to()
        window.dispatch_events()
        start, cpu = time.perf_counter(), time.process_time()
        window.renderer.draw(snap, now)
        gl.glFinish()
        drawn = time.perf_counter()
        window.flip()
        gl.glFinish()
        end, cpu = time.perf_counter(), time.process_time() - cpu
        if frame >= 30:  # warm-up: shader compile, glyph cache
            times["render"].append((drawn - start) * 1000)
            times["swap"].append((end - drawn) * 1000)
            times["frame"].append((end - start) * 1000)
            times["frame_cpu"].append(cpu * 1000)
            on_screen.append(len(track.index_range(now - 0.09, now + span)))
    window.close()
    result = {"renderer": renderer_name, "notes_on_screen": int(np.median(on_screen)),
              "frames": len(times["frame"]), "size": [style.width, style.height]}
    for name, values in times.items():
        values = np.array(values)
        result[f"{name}_median_ms"] = round(float(np.median(values)), 3)
        result[f"{name}_p99_ms"] = round(float(np.percentile(values, 99)), 3)
    result.update(target_p99_ms=8.0, load_average=round(os.getloadavg()[0], 2),
                  cpus=os.cpu_count())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

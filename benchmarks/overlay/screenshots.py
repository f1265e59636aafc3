"""Render the README's overlay screenshots into docs/img/ (under Xvfb when no display is set).

    .venv/bin/python -m benchmarks.overlay.screenshots [--out docs/img]

Each image is the overlay composited over a dark gradient (standing in for the video the
overlay floats over), plus the raw RGBA frame for the playing state.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img")
    args = parser.parse_args(argv)
    xvfb = None
    if not os.environ.get("DISPLAY"):
        from tests.fixtures.xvfb import start_xvfb
        xvfb, os.environ["DISPLAY"] = start_xvfb()
    try:
        render_all(Path(args.out))
    finally:
        if xvfb is not None:
            xvfb.terminate()
    return 0


def render_all(out: Path) -> None:
    from PIL import Image

    from chart_store.chart import Note, Track
    from companion.game.engine import GameEngine
    from companion.overlay.render import OffscreenRenderer
    from companion.overlay.state import GameSnapshot, snapshot_from_engine
    from companion.overlay.style import OverlayStyle

    out.mkdir(parents=True, exist_ok=True)
    style = OverlayStyle()
    rng = np.random.default_rng(4)
    notes, t = [], 1.0
    while t < 30:
        lanes = rng.choice(5, size=2 if rng.random() < 0.15 else 1, replace=False)
        for lane in sorted(lanes):
            notes.append(Note(round(t, 3), dur=0.5 if rng.random() < 0.12 else 0.0,
                              lane=int(lane)))
        t += float(rng.choice([0.125, 0.25, 0.25, 0.375]))
    track = Track(tuple(sorted(notes, key=lambda n: (n.t, n.lane))))
    engine = GameEngine(track)
    now = 9.0
    for i, note in enumerate(track):
        if note.t > now + 0.05:
            break
        if i % 11 == 5:
            continue  # a few misses
        error = float(rng.normal(0, 0.02))
        engine.queue_input(note.lane, True, note.t + error)
        engine.queue_input(note.lane, False, max(note.end, note.t + 0.06))
    engine.update(now)
    meta = dict(title="Muldjord - Synthetic Groove", artist="", duration_s=30.0,
                chart_source="imported-human", lanes=5, wall_time=0.0,
                beats=np.arange(1.0, 30.0, 0.5))    # the notes' 8th grid at 120 BPM
    background = gradient(style.width, style.height)
    shots = {
        "overlay-playing": (snapshot_from_engine(engine, status="synced", game_time=now,
                                                 **{k: v for k, v in meta.items()}), now),
        "overlay-identifying": (GameSnapshot(status="identifying", lanes=5), 0.0),
        "overlay-recording": (GameSnapshot(status="recording", lanes=5,
                                           message="The chart will be ready next time."), 0.0),
    }
    end = GameEngine(track)
    for i, note in enumerate(track):
        if i % 7:
            end.queue_input(note.lane, True, note.t + float(rng.normal(0, 0.025)))
            end.queue_input(note.lane, False, max(note.end, note.t + 0.06))
    end.update(40)
    shots["overlay-results"] = (snapshot_from_engine(end, status="ended", game_time=40, **meta),
                                40.0)
    with OffscreenRenderer(style) as renderer:
        for name, (snap, at) in shots.items():
            rgba = renderer.render(snap, at)
            if name == "overlay-playing":
                Image.fromarray(rgba, "RGBA").save(out / f"{name}-rgba.png")
            Image.fromarray(over(rgba, background), "RGB").save(out / f"{name}.png")


def gradient(width: int, height: int) -> np.ndarray:
    y = np.linspace(0, 1, height)[:, None, None]
    x = np.linspace(0, 1, width)[None, :, None]
    top, bottom = np.array([40, 70, 110]), np.array([120, 60, 80])
    return ((1 - y) * top + y * bottom + 25 * np.sin(6 * x)).clip(0, 255)


def over(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Composite a premultiplied-alpha frame over an RGB background."""
    alpha = rgba[..., 3:4] / 255.0
    return (rgba[..., :3] + background * (1 - alpha)).clip(0, 255).astype(np.uint8)


if __name__ == "__main__":
    sys.exit(main())

"""pyglet set up for drawing: the overlay's modules import it from here, before ``pyglet.gl``.

pyglet calls ``glGetError`` after every GL call unless told not to (``debug_gl``): a Python round
trip per call that costs a frame of the overlay about half a millisecond. The drawing code is
tested, so it runs without the check; ``PYGLET_DEBUG_GL=1`` turns it back on to chase a GL error.

Where there is no GPU, Mesa draws with llvmpipe, which by default hands every frame to one
rasterizer thread per core. The overlay fills about a megapixel of mostly transparent quads, so
the hand-offs cost more than they save, and the extra threads compete with the audio thread and
the X server for the cores: on 2 cores, rasterizing inline took the 99th-percentile frame from
~9.5 ms to ~5 ms (``benchmarks/overlay/frame_time.py``). ``LP_NUM_THREADS`` set by the user wins;
GPU drivers ignore it.
"""
import os

os.environ.setdefault("LP_NUM_THREADS", "0")  # read when Mesa creates its first context

import pyglet  # noqa: E402

if "PYGLET_DEBUG_GL" not in os.environ:
    pyglet.options["debug_gl"] = False

__all__ = ["pyglet"]

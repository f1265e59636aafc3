"""pyglet set up for drawing: the overlay's modules import it from here, before ``pyglet.gl``.

pyglet calls ``glGetError`` after every GL call unless told not to (``debug_gl``): a Python round
trip per call that costs a frame of the overlay about half a millisecond. The drawing code is
tested, so it runs without the check; ``PYGLET_DEBUG_GL=1`` turns it back on to chase a GL error.
"""
import os

import pyglet

if "PYGLET_DEBUG_GL" not in os.environ:
    pyglet.options["debug_gl"] = False

__all__ = ["pyglet"]

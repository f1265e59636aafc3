"""Audio routing: the virtual device the player's audio goes through (``loopjam setup-audio``).

Linux (PulseAudio, or PipeWire through pipewire-pulse) is handled here with ``pactl``
(:mod:`companion.routing.linux`). Windows (VB-CABLE) and macOS (BlackHole) need a driver the
user installs; ``installers/`` holds those scripts and their instructions, and
:func:`platform_router` raises :class:`RoutingUnsupported` with where to look.
"""
from __future__ import annotations

import sys

__all__ = ["RoutingError", "RoutingUnsupported", "NoSoundServer", "platform_router"]


class RoutingError(RuntimeError):
    """A routing command failed (the message says which and why)."""


class NoSoundServer(RoutingError):
    """The platform's sound server is not running (nothing can be routed, captured or played)."""


class RoutingUnsupported(RoutingError):
    """This platform's routing is set up by hand (or by an installer), not by LoopJam."""


def platform_router():
    """The router for this platform (Linux: :class:`~companion.routing.linux.PulseRouter`)."""
    if sys.platform.startswith("linux"):
        from companion.routing.linux import PulseRouter
        return PulseRouter()
    where = "installers/windows (VB-CABLE)" if sys.platform == "win32" else \
        "installers/macos (BlackHole)"
    raise RoutingUnsupported(f"on {sys.platform} the virtual device is installed by hand: "
                             f"see {where}")

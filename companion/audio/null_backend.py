"""The silent backend, last in the preference order: headless runs with no sound server."""
from __future__ import annotations

import time

from companion.audio.base import Backend, DeviceInfo, Sink, Source

__all__ = ["NullBackend"]


class NullSource(Source):
    """Endless silence, paced to the wall clock like a device."""

    def __init__(self, *, sr, channels, block_frames):
        super().__init__()
        self.sr, self.channels, self.block_frames = sr, channels, block_frames
        self._t0 = time.monotonic()
        self._pos = 0

    def _fill(self, out):
        out[:] = 0.0
        self._pos += self.block_frames
        delay = self._t0 + self._pos / self.sr - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return self.block_frames, 0


class NullSink(Sink):
    """Discards what it is given."""

    def __init__(self, *, sr, channels):
        self.sr, self.channels, self.latency_samples = sr, channels, 0

    def write(self, data):
        pass


class NullBackend(Backend):
    name = "null"
    supports_loopback = True  # silence is a perfectly good recording of nothing
    supports_output = True

    def devices(self):
        return [DeviceInfo("null", "Silence (no sound server)", "output", self.name, 2, True),
                DeviceInfo("null", "Silence (no sound server)", "input", self.name, 2, True)]

    def open_source(self, device, *, loopback, sr, channels, block_frames):
        self.find(device, kind="output" if loopback else "input")
        return NullSource(sr=sr, channels=channels, block_frames=block_frames)

    def open_sink(self, device, *, sr, channels, block_frames, buffer_frames):
        self.find(device, kind="output")
        return NullSink(sr=sr, channels=channels)

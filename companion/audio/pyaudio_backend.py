"""The ``pyaudio`` (PortAudio) backend: plain inputs and outputs, no loopback.

PortAudio reaches PulseAudio/PipeWire only through ALSA's ``pulse`` plugin, and records an
output only on Windows with a patched build, so this backend states ``supports_loopback = False``
and the factory prefers ``soundcard`` for loopback capture. Reads and writes use PortAudio's
blocking API with preallocated buffers (``read`` returns bytes: one allocation per block).

Two limits of PyAudio's binding: it cannot ask PortAudio for an output latency (a sink's
``buffer_frames``, ``loopjam play --latency-ms``, is not applied: the device's default latency
is used, and stated as ``latency_samples``); and on a capture overrun it discards the block it
had read, and PortAudio does not say how much it dropped before: the source reports that block
as lost (a gap, counted in ``overruns``), at least what was dropped.
"""
from __future__ import annotations

import os

import numpy as np

from companion.audio.base import (Backend, BackendUnavailable, DeviceInfo, DeviceLost, Sink,
                                  Source)

__all__ = ["PyAudioBackend"]


def _quietly(fn):
    """Call ``fn`` with fd 2 silenced: PortAudio's ALSA/JACK probing prints dozens of lines."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        return fn()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _open_stream(pa, index, direction, *, sr, channels, block_frames):
    """Open a float32 PortAudio stream (``direction`` "input" or "output") on device ``index``;
    returns (stream, latency in samples as PortAudio reports it)."""
    import pyaudio
    try:
        stream = pa.open(format=pyaudio.paFloat32, channels=channels, rate=sr,
                         frames_per_buffer=block_frames,
                         **{direction: True, f"{direction}_device_index": index})
    except OSError as error:
        raise DeviceLost(f"cannot open {direction} {index}: {error}") from None
    latency = stream.get_input_latency() if direction == "input" else stream.get_output_latency()
    return stream, int(latency * sr)


class PyAudioSource(Source):
    def __init__(self, pa, index, *, sr, channels, block_frames):
        super().__init__()
        self.sr, self.channels, self.block_frames = sr, channels, block_frames
        self._stream, self.latency_samples = _open_stream(pa, index, "input", sr=sr,
                                                          channels=channels,
                                                          block_frames=block_frames)

    def _fill(self, out):
        import pyaudio

        lost = 0
        while True:
            try:
                raw = self._stream.read(self.block_frames, exception_on_overflow=True)
                break
            except OSError as error:
                if error.errno != pyaudio.paInputOverflowed:
                    raise DeviceLost(f"capture stopped: {error}") from None
                # Input was dropped: a gap, never a silent shift of what follows.
                lost += self.block_frames
        out.reshape(-1)[:] = np.frombuffer(raw, dtype=np.float32)
        return self.block_frames, lost

    def close(self):
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class PyAudioSink(Sink):
    def __init__(self, pa, index, *, sr, channels, block_frames):
        self.sr, self.channels = sr, channels
        self._stream, self.latency_samples = _open_stream(pa, index, "output", sr=sr,
                                                          channels=channels,
                                                          block_frames=block_frames)

    def write(self, data):
        try:
            # PortAudio's binding takes read-only bytes only (no memoryview): one copy per block.
            self._stream.write(np.ascontiguousarray(data, dtype=np.float32).tobytes(),
                               num_frames=data.shape[0])
        except OSError as error:
            raise DeviceLost(f"playback stopped: {error}") from None

    def close(self):
        if self._stream is not None:
            self._stream.stop_stream()
            self._stream.close()
            self._stream = None


class PyAudioBackend(Backend):
    """PortAudio devices; a device id is its PortAudio index."""

    name = "pyaudio"
    supports_loopback = False
    supports_output = True

    def __init__(self):
        try:
            import pyaudio
        except ImportError:
            raise BackendUnavailable("pyaudio is not installed (pip install 'loopjam[pyaudio]')"
                                     ) from None
        self._pa = _quietly(pyaudio.PyAudio)


    def devices(self):
        pa = self._pa
        try:
            default_in = pa.get_default_input_device_info()["index"]
        except OSError:
            default_in = None
        try:
            default_out = pa.get_default_output_device_info()["index"]
        except OSError:
            default_out = None
        out = []
        for i in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(i)
            if info["maxOutputChannels"] > 0:
                out.append(DeviceInfo(str(i), info["name"], "output", self.name,
                                      int(info["maxOutputChannels"]), i == default_out))
            if info["maxInputChannels"] > 0:
                out.append(DeviceInfo(str(i), info["name"], "input", self.name,
                                      int(info["maxInputChannels"]), i == default_in))
        return out

    def open_source(self, device, *, loopback, sr, channels, block_frames):
        if loopback:
            raise BackendUnavailable("pyaudio cannot record an output device (no loopback)")
        index = int(self.find(device, kind="input").id)
        return PyAudioSource(self._pa, index, sr=sr, channels=channels, block_frames=block_frames)

    def open_sink(self, device, *, sr, channels, block_frames, buffer_frames):
        index = int(self.find(device, kind="output").id)
        return PyAudioSink(self._pa, index, sr=sr, channels=channels, block_frames=block_frames)

"""Files as devices: ``--source FILE`` and ``--sink FILE.wav`` run the live path offline.

A :class:`FileSource` decodes the file once (any format :mod:`analyzer.decode` reads) and hands
out blocks exactly as a capture device would, either as fast as they are asked for or paced to
the wall clock (``realtime=True``, like a device). A :class:`FileSink` writes float WAV.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from companion.audio.base import AudioError, Backend, DeviceInfo, Sink, Source

__all__ = ["FileBackend", "FileSource", "FileSink"]


class FileSource(Source):
    """Blocks of an audio file. ``sr`` is the file's rate; mono files are given ``channels``."""

    def __init__(self, path, *, channels: int = 2, block_frames: int = 512, realtime=False,
                 sr: int | None = None):
        super().__init__()
        from analyzer.decode import DecodeError, load
        try:
            y, self.sr = load(path, sr=sr, mono=False)
        except DecodeError as error:
            raise AudioError(str(error)) from None
        y = np.atleast_2d(y)
        if y.shape[0] != channels:  # downmix, or spread mono over every channel
            y = np.repeat(y.mean(axis=0, keepdims=True), channels, axis=0)
        self._samples = np.ascontiguousarray(y.T, dtype=np.float32)
        self.channels, self.block_frames = channels, block_frames
        self.path = Path(path)
        self.realtime = realtime
        self._t0 = None
        self._pos = 0

    @property
    def frames_total(self) -> int:
        return self._samples.shape[0]

    def _fill(self, out):
        n = min(self.block_frames, self.frames_total - self._pos)
        if n <= 0:
            return 0, 0
        out[:n] = self._samples[self._pos:self._pos + n]
        self._pos += n
        if self.realtime:  # a device returns a block once its last sample has been recorded
            if self._t0 is None:
                self._t0 = time.monotonic()
            delay = self._t0 + self._pos / self.sr - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return n, 0


class FileSink(Sink):
    """An audio file written block by block (this sink *is* the device, so it writes on the
    audio thread; the file is opened before the first block). The format follows the name's
    extension: float32 WAV, or what libsndfile writes for it (.flac 16-bit, .ogg Vorbis,
    .mp3...)."""

    def __init__(self, path, *, sr: int, channels: int):
        import soundfile
        self.sr, self.channels, self.latency_samples = sr, channels, 0
        self.path = Path(path)
        known = soundfile.available_formats()
        kind = {"AIF": "AIFF"}.get(self.path.suffix[1:].upper(), self.path.suffix[1:].upper())
        if kind not in known:
            raise AudioError(f"cannot write {path}: not a file type libsndfile writes (use "
                             f".wav, .flac or .ogg)")
        try:
            self._file = soundfile.SoundFile(os.fsencode(path), "w", samplerate=sr,
                                             channels=channels, format=kind,
                                             subtype="FLOAT" if kind == "WAV" else None)
        except (OSError, RuntimeError, ValueError, TypeError) as error:
            raise AudioError(f"cannot write {path}: {error}") from None

    def write(self, data):
        self._file.write(data)

    def skip(self, frames):
        self._file.write(np.zeros((frames, self.channels), np.float32))  # only after a gap

    def close(self):
        if not self._file.closed:
            self._file.close()


class FileBackend(Backend):
    """Audio files in place of devices (a device name is a path)."""

    name = "file"
    supports_loopback = False
    supports_output = True

    def __init__(self, *, realtime: bool = False):
        self.realtime = realtime

    def devices(self) -> list[DeviceInfo]:
        return []

    def open_source(self, device, *, loopback=False, sr=None, channels=2, block_frames=512):
        if loopback:
            raise AudioError("a file cannot be recorded as a loopback")
        return FileSource(device, channels=channels, block_frames=block_frames,
                          realtime=self.realtime, sr=sr)

    def open_sink(self, device, *, sr, channels, block_frames=512, buffer_frames=0):
        return FileSink(device, sr=sr, channels=channels)

"""The audio I/O interface every backend implements, and the one device matcher they share.

A :class:`Backend` lists :class:`DeviceInfo` records and opens a :class:`Source` (capture, or
loopback: what an output device plays) or a :class:`Sink` (playback). Sources fill a caller-owned,
preallocated :class:`Block` in place, stamped with its sample position on the source's audio
clock: samples the device dropped show up as a jump in ``position`` (``Block.gap``), never as a
silent shift. Sinks take ``(frames, channels)`` float32 arrays and report their output latency.

Xruns are counted, and the clock stays honest through them: a source counts its capture
overruns (``Source.overruns``, each a gap in ``position``), a sink its output underruns
(``Sink.underruns``, 0 where the backend cannot tell), and :meth:`Sink.skip` keeps a capture gap
out of the output's timing.

Errors: :class:`AudioError` is the root; :class:`DeviceNotFound` (a query matches nothing or is
ambiguous), :class:`BackendUnavailable` (library or sound server missing), :class:`DeviceLost`
(unplugged, server gone, stream failed), :class:`FormatChanged` (the stream's sample rate is not
the one it was opened with).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

__all__ = ["AudioError", "DeviceNotFound", "BackendUnavailable", "DeviceLost", "FormatChanged",
           "DeviceInfo", "Block", "Source", "Sink", "Backend", "match_device", "STREAM_SR"]

#: The rate (Hz) the live path records and plays devices at; the sound server converts a
#: device that runs at another rate.
STREAM_SR = 48000


class AudioError(Exception):
    """Root of every audio I/O failure."""


class DeviceNotFound(AudioError, LookupError):
    """No device, or more than one, matches what the user asked for."""


class BackendUnavailable(AudioError):
    """The backend's library or sound server is not there."""


class DeviceLost(AudioError):
    """A stream stopped working (device unplugged, sound server gone, stream failed)."""


class FormatChanged(AudioError):
    """The stream's sample rate is not (or no longer) the one it was opened with: positions
    counted at one rate cannot go on at another, so the stream stops and says so."""


@dataclass(frozen=True)
class DeviceInfo:
    """One device as a backend sees it.

    ``id`` is the backend's stable name (a PulseAudio sink name, a WASAPI id); ``name`` its
    human description; ``kind`` "output" or "input" (a loopback source records an output).
    """

    id: str
    name: str
    kind: str
    backend: str
    channels: int = 2
    is_default: bool = False

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "kind": self.kind, "backend": self.backend,
                "channels": self.channels, "default": self.is_default}


def match_device(query: str, devices) -> DeviceInfo:
    """The one device that ``query`` names: by exact id, else by a case-insensitive part of its
    name or id. An exact (case-insensitive) name wins over partial matches.

    Raises
    ------
    DeviceNotFound
        Nothing matches, or several do (the message lists them).

    Examples
    --------
    >>> devs = [DeviceInfo("alsa_output.pci", "Built-in Audio Analog Stereo", "output", "x"),
    ...         DeviceInfo("LoopJam", "LoopJam", "output", "x")]
    >>> match_device("built-in", devs).id
    'alsa_output.pci'
    """
    devices = list(devices)
    for device in devices:
        if device.id == query:
            return device
    q = query.casefold()
    exact = [d for d in devices if d.name.casefold() == q or d.id.casefold() == q]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [d for d in devices if q in d.name.casefold() or q in d.id.casefold()]
    if len(partial) == 1:
        return partial[0]
    listing = "; ".join(f"{d.id} ({d.name})" for d in (partial or devices)) or "none"
    if partial:
        raise DeviceNotFound(f"{query!r} matches several devices: {listing}")
    raise DeviceNotFound(f"no device matches {query!r}; devices: {listing}")


@dataclass(eq=False)
class Block:
    """A reusable block of samples: ``data[:frames]`` is valid, ``data[0]`` is sample
    ``position`` of the source's clock, ``gap`` samples were lost just before it (xrun)."""

    data: np.ndarray
    frames: int = 0
    position: int = 0
    gap: int = 0

    @classmethod
    def empty(cls, block_frames: int, channels: int) -> "Block":
        return cls(np.zeros((block_frames, channels), dtype=np.float32))

    @property
    def valid(self) -> np.ndarray:
        return self.data[:self.frames]


class Source(abc.ABC):
    """A capture stream. ``sr`` Hz, ``channels``, blocks of up to ``block_frames``."""

    sr: int
    channels: int
    block_frames: int
    #: Samples between a sound reaching the device and its block being returned (0 if unknown).
    latency_samples: int = 0

    def __init__(self):
        self._next = 0
        #: Capture overruns so far: blocks that came after a gap (samples the device dropped).
        self.overruns = 0

    @abc.abstractmethod
    def _fill(self, out: np.ndarray) -> tuple[int, int]:
        """Fill ``out`` (block_frames, channels); return (frames written, samples lost before)."""

    def read(self, block: Block) -> bool:
        """Fill ``block`` in place with the next samples; False once the stream has ended."""
        frames, lost = self._fill(block.data)
        if lost:
            self.overruns += 1
        block.gap = lost
        block.position = self._next + lost
        block.frames = frames
        self._next = block.position + frames
        return frames > 0

    def close(self) -> None:
        """Release the device (idempotent)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Sink(abc.ABC):
    """A playback stream. ``latency_samples``: from :meth:`write` returning to being heard."""

    sr: int
    channels: int
    latency_samples: int = 0
    #: Output underruns so far (the device ran out of samples and played silence); 0 where the
    #: backend cannot tell.
    underruns: int = 0

    @abc.abstractmethod
    def write(self, data: np.ndarray) -> None:
        """Queue ``data`` (frames, channels) float32; blocks while the device buffer is full."""

    def skip(self, frames: int) -> None:
        """Leave ``frames`` of silence before the next :meth:`write`: the source dropped that
        many samples, and what follows must still be heard at the stated latency. A device that
        plays silence when starved and keeps its own clock needs nothing (the default); a sink
        that queues by sample index or has no clock (a file) fills the span."""

    def close(self) -> None:
        """Play out what is queued and release the device (idempotent)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Backend(abc.ABC):
    """A family of devices. Capabilities are stated, not discovered by trial."""

    name: str
    supports_loopback: bool = False
    supports_output: bool = True

    @abc.abstractmethod
    def devices(self) -> list[DeviceInfo]:
        """Every input and output device, defaults marked."""

    def find(self, query: str | None, *, kind: str) -> DeviceInfo:
        """The device ``query`` names among this backend's devices of ``kind`` (default if None)."""
        candidates = [d for d in self.devices() if d.kind == kind]
        if query is None:
            for device in candidates:
                if device.is_default:
                    return device
            if candidates:
                return candidates[0]
            raise DeviceNotFound(f"{self.name}: no {kind} device")
        return match_device(query, candidates)

    @abc.abstractmethod
    def open_source(self, device: str | None, *, loopback: bool, sr: int, channels: int,
                    block_frames: int) -> Source:
        """Capture from ``device``: an input, or with ``loopback`` what an output device plays."""

    @abc.abstractmethod
    def open_sink(self, device: str | None, *, sr: int, channels: int, block_frames: int,
                  buffer_frames: int) -> Sink:
        """Play to ``device`` (None: the default output) keeping ``buffer_frames`` queued."""

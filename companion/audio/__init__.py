"""Audio I/O behind one small interface (see :mod:`companion.audio.base`).

Backends, in preference order: ``soundcard`` (system sound server, loopback capture),
``pyaudio`` (PortAudio), ``null`` (silence; always available). ``file`` stands in for devices
when a source or sink names a file. Nothing here touches a device until a function is called.

- :func:`get_backend` — the first available backend (optionally one that can do loopback).
- :func:`open_source` / :func:`open_sink` — parse a ``--source`` / ``--sink`` value and open it.
- :func:`list_devices` — every device of every available backend.
"""
from __future__ import annotations

import importlib
import os

from companion.audio.base import (AudioError, Backend, BackendUnavailable, Block, DeviceInfo,
                                  DeviceLost, DeviceNotFound, FormatChanged, STREAM_SR, Sink,
                                  Source, match_device)

__all__ = ["PREFERENCE", "get_backend", "open_source", "open_sink", "list_devices",
           "AudioError", "Backend", "BackendUnavailable", "Block", "DeviceInfo", "DeviceLost",
           "DeviceNotFound", "FormatChanged", "Sink", "Source", "match_device", "STREAM_SR"]

#: Backend names, tried in this order; ``null`` always works.
PREFERENCE = ("soundcard", "pyaudio", "null")
_MODULES = {"soundcard": ("soundcard_backend", "SoundcardBackend"),
            "pyaudio": ("pyaudio_backend", "PyAudioBackend"),
            "null": ("null_backend", "NullBackend")}


def _create(name: str) -> Backend:
    module, cls = _MODULES[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)()


def available_backends(*, loopback: bool = False, errors: list | None = None):
    """Create each backend in :data:`PREFERENCE` that works here and has devices (optionally
    only those that can record an output); why the others were passed over goes to ``errors``."""
    for name in PREFERENCE:
        try:
            backend = _create(name)
        except BackendUnavailable as error:
            if errors is not None:
                errors.append(str(error))
            continue
        if (backend.supports_loopback or not loopback) and backend.devices():
            yield backend


def get_backend(name: str | None = None, *, loopback: bool = False,
                device: str | None = None, preferred: str | None = None) -> Backend:
    """Backend ``name``, else the one ``LOOPJAM_AUDIO`` names, else ``preferred`` (the config's
    ``audio.backend``; None or "auto": no preference), else the first available one in
    :data:`PREFERENCE`. ``null`` is never picked for a named ``device``: asking for "SinkA" and
    getting silence would hide the real problem.
    """
    name = name or os.environ.get("LOOPJAM_AUDIO") or preferred
    if name == "auto":
        name = None
    if name is not None:
        if name not in _MODULES:
            raise BackendUnavailable(f"unknown audio backend {name!r}; "
                                     f"known: {', '.join(PREFERENCE)}")
        return _create(name)
    errors: list[str] = []
    for backend in available_backends(loopback=loopback, errors=errors):
        if backend.name != "null" or device is None:
            return backend
    raise BackendUnavailable(f"no audio backend can open {device!r}: " + "; ".join(errors))


def _is_file(spec: str) -> bool:
    return os.sep in spec or "/" in spec or os.path.splitext(spec)[1].lower() in {
        ".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aiff", ".aif"}


def open_source(spec: str | None, *, sr: int = STREAM_SR, channels: int = 2,
                block_frames: int = 512, realtime: bool = False,
                preferred: str | None = None) -> Source:
    """Open a ``--source`` value: ``loopback`` (what the default output plays),
    ``loopback:DEVICE``, an input ``DEVICE``, ``null``, or an audio FILE (at its own rate;
    ``realtime`` paces it like a device). ``preferred`` is as for :func:`get_backend`."""
    spec = spec or "loopback"
    if spec == "null":
        return get_backend("null").open_source(None, loopback=True, sr=sr, channels=channels,
                                               block_frames=block_frames)
    if spec == "loopback" or spec.startswith("loopback:"):
        device = spec.partition(":")[2] or None
        backend = get_backend(loopback=True, device=device, preferred=preferred)
        return backend.open_source(device, loopback=True, sr=sr, channels=channels,
                                   block_frames=block_frames)
    if _is_file(spec) or os.path.exists(spec):
        from companion.audio.file_backend import FileBackend
        return FileBackend(realtime=realtime).open_source(spec, channels=channels,
                                                          block_frames=block_frames)
    backend = get_backend(device=spec, preferred=preferred)
    return backend.open_source(spec, loopback=False, sr=sr, channels=channels,
                               block_frames=block_frames)


def open_sink(spec: str | None, *, sr: int, channels: int = 2, block_frames: int = 512,
              buffer_frames: int = 2048, preferred: str | None = None) -> Sink:
    """Open a ``--sink`` value: None (the default output), ``null``, an output ``DEVICE``, or a
    FILE.wav. ``buffer_frames`` is the device queue (the output latency); ``preferred`` is as
    for :func:`get_backend`."""
    if spec is not None and spec != "null" and _is_file(spec):
        from companion.audio.file_backend import FileBackend
        return FileBackend().open_sink(spec, sr=sr, channels=channels)
    backend = get_backend("null" if spec == "null" else None, device=spec, preferred=preferred)
    return backend.open_sink(None if spec == "null" else spec, sr=sr, channels=channels,
                             block_frames=block_frames, buffer_frames=buffer_frames)


def list_devices() -> list[DeviceInfo]:
    """Every device of every available backend (``null`` only when nothing else works)."""
    devices: list[DeviceInfo] = []
    for backend in available_backends():
        if backend.name == "null" and devices:
            break
        devices.extend(backend.devices())
    return devices

"""The ``soundcard`` backend: PulseAudio/PipeWire (monitors), WASAPI (loopback), CoreAudio.

``soundcard`` connects to the sound server when imported, so the import happens when the
backend is created, never when this module is imported. On PulseAudio/PipeWire its streams are
opened by soundcard and then read and written through libpulse directly (:class:`_PulseStream`):
soundcard's ``record``/``play`` allocate arrays and take the server lock several times per block.
Elsewhere (WASAPI, CoreAudio) soundcard's own calls are used.

Known limits: the server does not report capture overflows, so a gap can only come from the
server dropping data we did not read for seconds (its record buffer is large); a stream that
fails (device unplugged, server gone) raises :class:`DeviceLost` at the next block.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from companion.audio.base import (Backend, BackendUnavailable, DeviceInfo, DeviceLost, Sink,
                                  Source)

__all__ = ["SoundcardBackend"]


def _import_soundcard():
    # soundcard names its sound-server client after sys.argv (and fails on ``python -c``).
    argv, sys.argv = sys.argv, ["loopjam"]
    try:
        import soundcard
    except Exception as error:  # no sound server: soundcard fails inside its import
        raise BackendUnavailable(f"soundcard: no sound server ({type(error).__name__}: {error})"
                                 ) from None
    finally:
        sys.argv = argv
    _reuse_mainloop_lock()
    return soundcard


def _reuse_mainloop_lock() -> None:
    """soundcard's PulseAudio client defines a new class for the mainloop lock on every call
    into libpulse (about 10 us each, several per audio block, on the audio thread): give each
    client one reusable lock object instead. Same lock, same calls; only the waste goes."""
    try:
        from soundcard import pulseaudio
    except ImportError:  # not the PulseAudio backend (Windows, macOS)
        return
    client = pulseaudio._PulseAudio
    if getattr(client._lock_mainloop, "reused", False):
        return
    pa = pulseaudio._pa

    class MainloopLock:
        __slots__ = ("mainloop",)

        def __init__(self, mainloop):
            self.mainloop = mainloop

        def __enter__(self):
            pa.pa_threaded_mainloop_lock(self.mainloop)

        def __exit__(self, *exc):
            pa.pa_threaded_mainloop_unlock(self.mainloop)

    def lock_mainloop(self):
        lock = self.__dict__.get("_loopjam_lock")
        if lock is None:
            lock = self._loopjam_lock = MainloopLock(self.mainloop)
        return lock

    lock_mainloop.reused = True
    client._lock_mainloop = lock_mainloop


def _device_name_lib():
    """libpulse's ``pa_stream_get_device_name``, which soundcard's bindings leave out (cached)."""
    global _DEVICE_NAME_LIB
    if _DEVICE_NAME_LIB is None:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef("const char *pa_stream_get_device_name(void *s);")
        _DEVICE_NAME_LIB = (ffi.dlopen("libpulse.so.0"), ffi)
    return _DEVICE_NAME_LIB


_DEVICE_NAME_LIB = None


class _PulseStream:
    """A soundcard PulseAudio stream driven through libpulse directly: one mainloop lock per
    fragment, the samples copied straight between the server's memory and our preallocated
    arrays. soundcard's own ``record``/``play`` take the lock several times and build three
    arrays and a bytes copy per block (a third of the audio thread's CPU in
    ``benchmarks/live``).

    A stream that failed (device unplugged, server gone) or ended is noticed at the next look
    and raises :class:`DeviceLost`, never waits forever."""

    SIZE_MAX = 2 ** 64 - 1  # libpulse's (size_t)-1: the stream is not good

    def __init__(self, stream, *, sr: int, channels: int, what: str):
        from soundcard import pulseaudio

        self._pa, self._ffi = pulseaudio._pa, pulseaudio._ffi
        # The client's one reusable mainloop lock (see _reuse_mainloop_lock).
        self._locked = pulseaudio._pulse._lock_mainloop()
        self.stream, self.sr, self.channels, self.what = stream, sr, channels, what
        self._data = self._ffi.new("void**")
        self._nbytes = self._ffi.new("size_t*")

    def device_name(self) -> str:
        """The device the server has the stream on now (it moves a stream to the fallback
        device when its own goes away)."""
        lib, ffi = _device_name_lib()
        address = int(self._ffi.cast("uintptr_t", self.stream))
        with self._locked:
            name = lib.pa_stream_get_device_name(ffi.cast("void *", address))
        return "" if name == ffi.NULL else ffi.string(name).decode()

    def lost(self, why: str) -> DeviceLost:
        return DeviceLost(f"{self.what} stopped: {why}")

    def check_ready(self) -> None:
        pa = self._pa
        with self._locked:
            state = pa.pa_stream_get_state(self.stream)
        if state != pa.PA_STREAM_READY:
            raise self.lost(f"stream state {state} (device gone?)")

    def wait_for(self, samples: int) -> None:
        """Sleep about as long as ``samples`` (interleaved) take to arrive or drain."""
        self.check_ready()
        time.sleep(max(samples / (self.channels * self.sr), 0.001))


class _PulseReader(_PulseStream):
    """Reads a record stream into caller arrays; a fragment larger than asked for is kept."""

    def __init__(self, recorder, *, sr, channels, capacity):
        super().__init__(recorder.stream, sr=sr, channels=channels, what="capture")
        self._pending = np.zeros(capacity, dtype=np.float32)
        self._pending_n = 0
        # soundcard's read callback sets this event when a fragment arrives: waiting on it
        # wakes us once per fragment (sleeping for the expected time wakes too early, and
        # costs more in a virtual machine, where each timer is expensive).
        self._arrived = recorder._record_event

    def backlog(self) -> int:
        """Samples (interleaved) received and not yet read."""
        pa = self._pa
        with self._locked:
            readable = pa.pa_stream_readable_size(self.stream)
        return self._pending_n + (0 if readable == self.SIZE_MAX else readable // 4)

    def read(self, out: np.ndarray) -> None:
        """Fill ``out`` (1-D float32, interleaved) with the next samples, waiting for them."""
        got = self._take_pending(out)
        while got < out.size:
            n = self._take(out[got:])
            if n == 0:
                if not self._arrived.wait(timeout=0.5):
                    self.check_ready()  # nothing for half a second: is the stream still there?
                self._arrived.clear()
            got += n

    def skip(self, samples: int) -> None:
        """Drop the next ``samples`` (interleaved) already received."""
        drop = min(samples, self._pending_n)
        self._pending[:self._pending_n - drop] = self._pending[drop:self._pending_n]
        self._pending_n -= drop
        samples -= drop
        while samples > 0:
            n = self._take(None, limit=samples)
            if n == 0:
                return
            samples -= n

    def _take_pending(self, out: np.ndarray) -> int:
        n = min(self._pending_n, out.size)
        if n:
            out[:n] = self._pending[:n]
            self._pending[:self._pending_n - n] = self._pending[n:self._pending_n]
            self._pending_n -= n
        return n

    def _take(self, out: np.ndarray | None, *, limit: int = 0) -> int:
        """Copy one fragment from the server into ``out`` (None: discard up to ``limit``),
        the rest into the pending store; return samples given (0: nothing there yet)."""
        pa, ffi = self._pa, self._ffi
        with self._locked:
            readable = pa.pa_stream_readable_size(self.stream)
            if readable == self.SIZE_MAX:
                raise self.lost("the stream failed (device unplugged or server gone)")
            if readable == 0:
                return 0
            if pa.pa_stream_peek(self.stream, self._data, self._nbytes) < 0:
                raise self.lost("cannot read the stream")
            n = self._nbytes[0] // 4
            if n == 0:
                return 0
            want = min(n, out.size if out is not None else limit)
            rest = n - want
            if rest > self._pending.size - self._pending_n:
                raise self.lost(f"a fragment of {n} samples is larger than expected")
            if self._data[0] == ffi.NULL:  # a hole in the stream: silence
                if out is not None:
                    out[:want] = 0.0
                self._pending[self._pending_n:self._pending_n + rest] = 0.0
            else:
                chunk = np.frombuffer(ffi.buffer(self._data[0], n * 4), dtype=np.float32)
                if out is not None:
                    out[:want] = chunk[:want]
                self._pending[self._pending_n:self._pending_n + rest] = chunk[want:]
            self._pending_n += rest
            pa.pa_stream_drop(self.stream)
            return want


class _PulseWriter(_PulseStream):
    """Writes caller arrays into a playback stream once the server has room for them."""

    def __init__(self, player, *, sr, channels):
        super().__init__(player.stream, sr=sr, channels=channels, what="playback")

    def write(self, data: np.ndarray) -> None:
        flat = np.ascontiguousarray(data, dtype=np.float32).reshape(-1)
        done = 0
        while done < flat.size:
            n = self._put(flat[done:])
            if n == 0:
                self.wait_for(flat.size - done)
            done += n

    def _put(self, flat: np.ndarray) -> int:
        pa, ffi = self._pa, self._ffi
        with self._locked:
            room = pa.pa_stream_writable_size(self.stream)
            if room == self.SIZE_MAX:
                raise self.lost("the stream failed (device unplugged or server gone)")
            n = min(room // (4 * self.channels) * self.channels, flat.size)
            if n == 0:
                return 0
            # libpulse copies the samples (no free callback): ours stay ours.
            if pa.pa_stream_write(self.stream, ffi.from_buffer(flat[:n]), n * 4, ffi.NULL, 0,
                                  pa.PA_SEEK_RELATIVE) < 0:
                raise self.lost("cannot write the stream")
            return n


def _is_pulse(device) -> bool:
    return type(device).__module__ == "soundcard.pulseaudio"


class SoundcardSource(Source):
    """Capture through soundcard. If the server holds more than ``max_backlog_frames`` not yet
    read (we were stalled, or started late), the excess is dropped and reported as a gap, so a
    stall does not become permanent latency."""

    #: Blocks between two looks at the backlog (a cheap query).
    CHECK_EVERY = 16

    def __init__(self, microphone, *, sr, channels, block_frames, max_backlog_frames=None):
        super().__init__()
        self.sr, self.channels, self.block_frames = sr, channels, block_frames
        self.max_backlog_frames = (max_backlog_frames if max_backlog_frames is not None
                                   else max(4 * block_frames, sr // 20))
        self._blocks = 0
        self._recorder = microphone.recorder(samplerate=sr, channels=channels,
                                             blocksize=block_frames)
        try:
            self._recorder.__enter__()
        except RuntimeError as error:
            raise DeviceLost(f"cannot open {microphone.name}: {error}") from None
        self._open = True
        # Fragments are about a block (soundcard asks for that fragment size); a few spare.
        self._reader = (_PulseReader(self._recorder, sr=sr, channels=channels,
                                     capacity=16 * block_frames * channels)
                        if _is_pulse(microphone) else None)
        self._device = self._reader.device_name() if self._reader is not None else None

    def _fill(self, out):
        lost = 0
        if self._blocks % self.CHECK_EVERY == 1:
            self._check_device()
            lost = self._drop_backlog()
        if self._reader is not None:
            self._reader.read(out.reshape(-1))
        else:  # WASAPI, CoreAudio: soundcard's own call (allocates)
            try:
                out[:, :] = self._recorder.record(numframes=self.block_frames)
            except (RuntimeError, AssertionError, TypeError) as error:
                raise DeviceLost(f"capture stopped: {error!r}") from None
        self._blocks += 1
        return self.block_frames, lost

    def _check_device(self) -> None:
        """A device that goes away takes our stream to the server's fallback device, which
        records something else (perhaps our own output): that is a lost device, said so."""
        if self._reader is None:
            return
        now = self._reader.device_name()
        if now != self._device:
            raise self._reader.lost(f"{self._device} is gone (the server moved the capture "
                                    f"to {now or 'nothing'})")

    def _drop_backlog(self) -> int:
        if self._reader is None:
            return 0
        backlog = self._reader.backlog() // self.channels
        if backlog <= self.max_backlog_frames:
            return 0
        excess = backlog - self.block_frames
        self._reader.skip(excess * self.channels)
        return excess

    def close(self):
        if self._open:
            self._open = False
            try:
                self._recorder.__exit__(None, None, None)
            except RuntimeError:
                pass  # the stream is already gone with its device


class SoundcardSink(Sink):
    def __init__(self, speaker, *, sr, channels, buffer_frames):
        self.sr, self.channels = sr, channels
        # soundcard's player blocksize is the server-side target length (PA tlength), i.e. the
        # output latency with PA_STREAM_ADJUST_LATENCY.
        self.latency_samples = int(buffer_frames)
        self._player = speaker.player(samplerate=sr, channels=channels, blocksize=buffer_frames)
        try:
            self._player.__enter__()
        except RuntimeError as error:
            raise DeviceLost(f"cannot open {speaker.name}: {error}") from None
        self._open = True
        self._writer = (_PulseWriter(self._player, sr=sr, channels=channels)
                        if _is_pulse(speaker) else None)

    def write(self, data):
        if self._writer is not None:
            self._writer.write(data)
            return
        try:
            self._player.play(data)  # copies to bytes internally (soundcard)
        except (RuntimeError, AssertionError, TypeError) as error:
            raise DeviceLost(f"playback stopped: {error!r}") from None

    def device_name(self) -> str | None:
        """The device playing this stream now (the server moves it to its fallback device
        when ours goes away; None off PulseAudio)."""
        return self._writer.device_name() if self._writer is not None else None

    def measured_latency_s(self) -> float:
        """The server's current latency estimate for this stream, seconds (Linux only)."""
        return float(self._player.latency)

    def close(self):
        if self._open:
            self._open = False
            try:
                self._player.__exit__(None, None, None)
            except RuntimeError:
                pass


class SoundcardBackend(Backend):
    """Devices of the system sound server through ``soundcard``."""

    name = "soundcard"
    supports_loopback = True
    supports_output = True

    def __init__(self):
        self._sc = _import_soundcard()

    def devices(self):
        sc = self._sc
        try:
            default_out = sc.default_speaker().id
        except Exception:  # no default sink configured
            default_out = None
        try:
            default_in = sc.default_microphone().id
        except Exception:
            default_in = None
        out = [DeviceInfo(s.id, s.name, "output", self.name, s.channels, s.id == default_out)
               for s in sc.all_speakers()]
        out += [DeviceInfo(m.id, m.name, "input", self.name, m.channels, m.id == default_in)
                for m in sc.all_microphones(include_loopback=False)]
        return out

    def _loopback_microphone(self, speaker_id):
        mics = {m.id: m for m in self._sc.all_microphones(include_loopback=True)}
        for candidate in (speaker_id + ".monitor", speaker_id):  # PulseAudio, WASAPI/CoreAudio
            if candidate in mics and mics[candidate].isloopback:
                return mics[candidate]
        raise BackendUnavailable(f"soundcard: output {speaker_id!r} has no loopback")

    def open_source(self, device, *, loopback, sr, channels, block_frames):
        if loopback:
            info = self.find(device, kind="output")
            mic = self._loopback_microphone(info.id)
        else:
            mic = self._sc.get_microphone(self.find(device, kind="input").id)
        return SoundcardSource(mic, sr=sr, channels=channels, block_frames=block_frames)

    def open_sink(self, device, *, sr, channels, block_frames, buffer_frames):
        speaker = self._sc.get_speaker(self.find(device, kind="output").id)
        return SoundcardSink(speaker, sr=sr, channels=channels, buffer_frames=buffer_frames)

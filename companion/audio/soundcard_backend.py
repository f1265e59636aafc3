"""The ``soundcard`` backend: PulseAudio/PipeWire (monitors), WASAPI (loopback), CoreAudio.

``soundcard`` connects to the sound server when imported, so the import happens when the
backend is created, never when this module is imported. On PulseAudio/PipeWire its streams are
opened by soundcard and then read and written through libpulse directly (:class:`_PulseStream`):
soundcard's ``record``/``play`` allocate arrays and take the server lock several times per block.
Elsewhere (WASAPI, CoreAudio) soundcard's own calls are used.

Xruns: the server does not report capture overflows (its record buffer holds seconds); a
capture that falls behind drops what it cannot catch up with and says so as a gap (a capture
overrun). The output does not pre-buffer, so an underrun costs the span that came too late,
never the lag after it (:class:`_PulseWriter`); underruns are counted. The server resamples a
device whose rate changes; a stream not at its own rate raises :class:`FormatChanged`, a stream
that fails (device unplugged, server gone) :class:`DeviceLost`, at the next block.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from companion.audio.base import (Backend, BackendUnavailable, DeviceInfo, DeviceLost,
                                  FormatChanged, Sink, Source)

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


def _libpulse():
    """The libpulse calls soundcard's bindings leave out (cached): the stream's device and
    sample spec, its latest underflow, its timing (buffer fill), and changing its buffer
    metrics."""
    global _LIBPULSE
    if _LIBPULSE is None:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef("""
            typedef struct { uint32_t maxlength, tlength, prebuf, minreq, fragsize; } attr_t;
            typedef struct { int format; uint32_t rate; uint8_t channels; } spec_t;
            const char *pa_stream_get_device_name(void *s);
            const spec_t *pa_stream_get_sample_spec(void *s);
            int64_t pa_stream_get_underflow_index(void *s);
            void *pa_stream_set_buffer_attr(void *s, const attr_t *attr, void *cb, void *data);
            void pa_operation_unref(void *o);
            typedef struct {
                struct { long tv_sec; long tv_usec; } timestamp;
                int synchronized_clocks;
                uint64_t sink_usec, source_usec, transport_usec;
                int playing, write_index_corrupt;
                int64_t write_index;
                int read_index_corrupt;
                int64_t read_index;
                uint64_t configured_sink_usec, configured_source_usec;
                int64_t since_underrun;
            } timing_t;
            const timing_t *pa_stream_get_timing_info(void *s);
            void *pa_stream_update_timing_info(void *s, void *cb, void *data);
        """)
        _LIBPULSE = (ffi.dlopen("libpulse.so.0"), ffi)
    return _LIBPULSE


_LIBPULSE = None


class _PulseStream:
    """A soundcard PulseAudio stream driven through libpulse directly: one mainloop lock per
    fragment, the samples copied straight between the server's memory and our preallocated
    arrays. soundcard's own ``record``/``play`` take the lock several times and build three
    arrays and a bytes copy per block (a third of the audio thread's CPU in
    ``benchmarks/live``).

    A stream that failed (device unplugged, server gone) or ended is noticed at the next look
    and raises :class:`DeviceLost`, never waits forever; one whose rate is not ours raises
    :class:`FormatChanged`."""

    SIZE_MAX = 2 ** 64 - 1  # libpulse's (size_t)-1: the stream is not good

    def __init__(self, stream, *, sr: int, channels: int, what: str):
        from soundcard import pulseaudio

        self._pa, self._ffi = pulseaudio._pa, pulseaudio._ffi
        # The client's one reusable mainloop lock (see _reuse_mainloop_lock).
        self._locked = pulseaudio._pulse._lock_mainloop()
        self.stream, self.sr, self.channels, self.what = stream, sr, channels, what
        self._data = self._ffi.new("void**")
        self._nbytes = self._ffi.new("size_t*")
        # The same stream as a pointer of our own bindings (see _libpulse).
        self._lib, self._cffi = _libpulse()
        self._raw = self._cffi.cast("void *", int(self._ffi.cast("uintptr_t", stream)))
        self.check_rate()

    def device_name(self) -> str:
        """The device the server has the stream on now (it moves a stream to the fallback
        device when its own goes away)."""
        with self._locked:
            name = self._lib.pa_stream_get_device_name(self._raw)
        return "" if name == self._cffi.NULL else self._cffi.string(name).decode()

    def check_rate(self) -> None:
        """The server resamples whatever the device does to the rate the stream was opened
        with; a stream that is not (or no longer) at that rate cannot go on counting samples."""
        with self._locked:
            rate = self._lib.pa_stream_get_sample_spec(self._raw).rate
        if rate != self.sr:
            raise FormatChanged(f"{self.what} sample rate is {rate} Hz, not {self.sr} Hz: "
                                f"open it again at {rate} Hz")

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

    #: Seconds without a sample before we ask whether the stream is still there.
    QUIET_S = 0.5
    #: Shortest sleep, seconds: the server delivers every few milliseconds, not sooner.
    MIN_NAP_S = 0.002

    def __init__(self, recorder, *, sr, channels, capacity):
        super().__init__(recorder.stream, sr=sr, channels=channels, what="capture")
        self._pending = np.zeros(capacity, dtype=np.float32)
        self._pending_n = 0
        self._next_piece = 0.0  # when the server's next piece is due (monotonic seconds)
        # No read callback: soundcard's wakes Python (and takes the interpreter lock) in
        # libpulse's thread for every piece of a fragment; we sleep until a block is due.
        with self._locked:
            self._pa.pa_stream_set_read_callback(self.stream, self._ffi.NULL, self._ffi.NULL)

    def backlog(self) -> int:
        """Samples (interleaved) received and not yet read."""
        pa = self._pa
        with self._locked:
            readable = pa.pa_stream_readable_size(self.stream)
        return self._pending_n + (0 if readable == self.SIZE_MAX else readable // 4)

    def read(self, out: np.ndarray) -> None:
        """Fill ``out`` (1-D float32, interleaved) with the next samples, waiting for them.

        The server delivers a fragment in pieces (about 10 ms each on a null sink); sleeping for
        as long as the missing samples take to arrive wakes us about twice a block, and never
        more than a nap after the last piece came."""
        got = self._take_pending(out)
        quiet = 0.0
        while got < out.size:
            n = self._take(out[got:])
            if n:
                got, quiet = got + n, 0.0
                continue
            # The missing samples' time, and not before the next piece is due.
            nap = max((out.size - got) / (self.channels * self.sr), self.MIN_NAP_S,
                      self._next_piece - time.monotonic())
            time.sleep(nap)
            quiet += nap
            if quiet > self.QUIET_S:  # nothing for a while: is the stream still there?
                self.check_ready()
                quiet = 0.0

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
            # Peek says both "nothing yet" (0 bytes) and "stream failed" (< 0) in one call.
            if pa.pa_stream_peek(self.stream, self._data, self._nbytes) < 0:
                raise self.lost("the stream failed (device unplugged or server gone)")
            n = self._nbytes[0] // 4
            if n == 0:
                return 0
            self._next_piece = time.monotonic() + n / (self.channels * self.sr)
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
    """Writes caller arrays into a playback stream, every sample at its place on the clock.

    The stream does not pre-buffer (prebuf 0): when it runs dry the server plays silence and
    keeps counting, drops what then comes too late, and says so (an underflow, counted here).
    So the output never slips: the first write lands ``tlength`` past the server's read
    position, and each later one right after the last (after a hole if :meth:`skip` asked for
    one), so every sample is heard the stated latency after its block was written, whatever
    happened in between. One ``pa_stream_write`` per block, and no wait unless the source
    runs ahead of the clock: the capture paces the loop. Every :attr:`CHECK_EVERY` blocks the
    server says how full the buffer is; a buffer that keeps growing or stays dry (the output's
    clock runs slower or faster than the source's) starts again at the stated latency.
    """

    CHECK_EVERY = 16
    #: Blocks queued beyond the stated latency before :meth:`write` waits.
    AHEAD_BLOCKS = 4
    #: Level checks in a row that find the buffer dry or overfull before starting again.
    OFF_CHECKS = 3

    def __init__(self, player, *, sr, channels, tlength_frames):
        super().__init__(player.stream, sr=sr, channels=channels, what="playback")
        self._player = player
        lib, ffi = self._lib, self._cffi
        attr = ffi.new("attr_t *", {"maxlength": 2 ** 32 - 1, "minreq": 2 ** 32 - 1,
                                    "fragsize": 2 ** 32 - 1, "prebuf": 0,
                                    "tlength": tlength_frames * channels * 4})
        with self._locked:
            lib.pa_operation_unref(lib.pa_stream_set_buffer_attr(self._raw, attr, ffi.NULL,
                                                                 ffi.NULL))
        #: Bytes queued ahead of the server's read position when a block is written.
        self._offset = self._pa.pa_stream_get_buffer_attr(self.stream).tlength
        #: From a write returning to its last sample being heard, frames: measured by the server
        #: at each start (the request until then).
        self.latency_frames = int(tlength_frames)
        self._anchor = True  # the next write starts at the stated latency
        self._anchored_at, self._since_anchor = 0.0, 0  # when, and frames written since
        self._hole = 0  # bytes of silence to leave before the next write
        self._writes = 0
        self._off_level = 0  # checks in a row that found the buffer far from its level
        self._underflow = -1
        self.underruns = 0

    def skip(self, frames: int) -> None:
        self._hole += frames * self.channels * 4

    def write(self, data: np.ndarray) -> None:
        flat = np.ascontiguousarray(data, dtype=np.float32).reshape(-1)
        frames = flat.size // self.channels
        if not self._anchor:
            # Frames queued beyond the stated latency, by the clock: a source faster than real
            # time waits here (the buffer is full) instead of flooding the server.
            ahead = self._since_anchor - (time.monotonic() - self._anchored_at) * self.sr
            if ahead > self.AHEAD_BLOCKS * frames:
                self.wait_for(int(ahead - frames) * self.channels)
        pa, ffi, lib = self._pa, self._ffi, self._lib
        with self._locked:
            if self._anchor:  # this block starts the stated latency after the read position
                offset, mode = self._offset, pa.PA_SEEK_RELATIVE_ON_READ
            else:
                offset, mode = self._hole, pa.PA_SEEK_RELATIVE
            # libpulse copies the samples (no free callback): ours stay ours.
            if pa.pa_stream_write(self.stream, ffi.from_buffer(flat), flat.size * 4, ffi.NULL,
                                  offset, mode) < 0:
                raise self.lost("the stream failed (device unplugged or server gone)")
            if self._anchor:
                self._anchored_at, self._since_anchor = time.monotonic(), frames
            else:
                self._since_anchor += frames + self._hole // (4 * self.channels)
            anchored, self._anchor, self._hole = self._anchor, False, 0
            underflow = lib.pa_stream_get_underflow_index(self._raw)
            self._writes += 1
            if self._writes % self.CHECK_EVERY == 0:  # ask; the answer is read a block later
                lib.pa_operation_unref(lib.pa_stream_update_timing_info(self._raw, ffi.NULL,
                                                                        ffi.NULL))
            elif self._writes % self.CHECK_EVERY == 1 and self._writes > 1:
                self._check_level(flat.size * 4)
        if underflow != self._underflow:
            self._underflow = underflow
            self.underruns += 1
        if anchored:  # one round trip to the server, at each start only
            self.latency_frames = int(round(self._player.latency * self.sr))

    def _check_level(self, block_bytes: int) -> None:
        """How full the buffer was when the server last said (a block ago, so up to a block
        fuller than now). Called with the mainloop locked."""
        lib, ffi = self._lib, self._cffi
        info = lib.pa_stream_get_timing_info(self._raw)
        if (info != ffi.NULL and not info.write_index_corrupt
                and not info.read_index_corrupt):
            # Steady, it reads up to two blocks above the offset: the block just written, and
            # the one played since the server looked (and write() lets a source run up to
            # AHEAD_BLOCKS ahead). Dry (below zero) or beyond that, again and again, is not a
            # stall that the backlog makes good.
            level = info.write_index - info.read_index
            far = not 0 <= level <= self._offset + (self.AHEAD_BLOCKS + 2) * block_bytes
            self._off_level = self._off_level + 1 if far else 0
            if self._off_level >= self.OFF_CHECKS:
                self._anchor, self._off_level = True, 0

    def close(self) -> None:
        """Let what is queued play out, then disconnect. Not soundcard's close: its drain
        never ends on a stream that does not pre-buffer (the server keeps playing silence)."""
        from soundcard import pulseaudio

        time.sleep(min(self.latency_frames / self.sr, 1.0))
        pulse, pa = pulseaudio._pulse, self._pa
        pulse._pa_stream_disconnect(self.stream)
        deadline = time.monotonic() + 2.0
        while (pulse._pa_stream_get_state(self.stream)
               not in (pa.PA_STREAM_TERMINATED, pa.PA_STREAM_FAILED)
               and time.monotonic() < deadline):
            time.sleep(0.01)
        pulse._pa_stream_unref(self.stream)


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
        if self._blocks == 0:
            # What piled up while the rest was opened is not live any more: the stream starts
            # at the newest block (no gap: nothing was lost after the start).
            self._drop_backlog(0)
        elif self._blocks % self.CHECK_EVERY == 1:
            self._check_device()
            lost = self._drop_backlog(self.max_backlog_frames)
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
        self._reader.check_rate()
        now = self._reader.device_name()
        if now != self._device:
            raise self._reader.lost(f"{self._device} is gone (the server moved the capture "
                                    f"to {now or 'nothing'})")

    def _drop_backlog(self, limit: int) -> int:
        """Drop what was received beyond the next block if that is more than ``limit``
        frames; return the frames dropped."""
        if self._reader is None:
            return 0
        backlog = self._reader.backlog() // self.channels
        if backlog <= max(limit, self.block_frames):
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
        # output latency with PA_STREAM_ADJUST_LATENCY; on PulseAudio the server measures it
        # once playing (see latency_samples).
        self._requested = int(buffer_frames)
        self._player = speaker.player(samplerate=sr, channels=channels, blocksize=buffer_frames)
        try:
            self._player.__enter__()
        except RuntimeError as error:
            raise DeviceLost(f"cannot open {speaker.name}: {error}") from None
        self._open = True
        self._writer = (_PulseWriter(self._player, sr=sr, channels=channels,
                                     tlength_frames=buffer_frames)
                        if _is_pulse(speaker) else None)

    @property
    def latency_samples(self) -> int:
        return self._writer.latency_frames if self._writer is not None else self._requested

    @property
    def underruns(self) -> int:
        return self._writer.underruns if self._writer is not None else 0

    def skip(self, frames):
        if self._writer is not None:  # elsewhere the device plays silence and keeps its clock
            self._writer.skip(frames)

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

    def close(self):
        if self._open:
            self._open = False
            if self._writer is not None:
                self._writer.close()
                return
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

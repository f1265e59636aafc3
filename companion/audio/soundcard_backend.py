"""The ``soundcard`` backend: PulseAudio/PipeWire (monitors), WASAPI (loopback), CoreAudio.

``soundcard`` connects to the sound server when imported, so the import happens when the
backend is created, never when this module is imported. Its ``record``/``play`` calls allocate
a fresh array per call internally (measured in benchmarks/live); everything on our side of the
call is preallocated.

Known limits: the library does not report capture overflows, so a gap can only come from the
server dropping data we did not read for seconds (its record buffer is large); a stream that
fails (device unplugged, server gone) raises :class:`DeviceLost` within about a second.
"""
from __future__ import annotations

import sys
import time


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


class SoundcardSource(Source):
    """Capture through soundcard. If the server holds more than ``max_backlog_frames`` not yet
    read (we were stalled, or started late), the excess is dropped and reported as a gap, so a
    stall does not become permanent latency."""

    #: Blocks between two looks at the backlog (a cheap timing query).
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

    def _fill(self, out):
        try:
            lost = self._drop_backlog() if self._blocks % self.CHECK_EVERY == 1 else 0
            data = self._recorder.record(numframes=self.block_frames)  # allocates (soundcard)
        except (RuntimeError, AssertionError, TypeError) as error:  # TypeError: server gone
            raise DeviceLost(f"capture stopped: {error!r}") from None
        self._blocks += 1
        out[:, :] = data
        return self.block_frames, lost

    def _drop_backlog(self) -> int:
        # What the server already sent us and we have not read: a client-side count (asking
        # the server for timing would abort the process inside libpulse if it just vanished).
        from soundcard.pulseaudio import _pulse

        readable = _pulse._pa_stream_readable_size(self._recorder.stream)
        if readable == 2 ** 64 - 1 or readable < 0:  # (size_t)-1: stream failed; read says so
            return 0
        backlog = (readable // 4 + self._recorder._pending_chunk.size) // self.channels
        if backlog <= self.max_backlog_frames:
            return 0
        excess = backlog - self.block_frames
        self._recorder.record(numframes=excess)
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

    def write(self, data):
        # soundcard's play() polls every millisecond while the server's buffer is full, which
        # in steady state is every block: wait for the room once instead (saves most of the
        # audio thread's CPU and its fight for the GIL).
        from soundcard.pulseaudio import _pulse

        frames = data.shape[0]
        for _ in range(100):
            room = _pulse._pa_stream_writable_size(self._player.stream) // (4 * self.channels)
            if room >= frames or room < 0 or room >= 2 ** 60:  # (size_t)-1: failed, play says
                break
            time.sleep((frames - room) / self.sr)
        try:
            self._player.play(data)  # copies to bytes internally (soundcard)
        except (RuntimeError, AssertionError, TypeError) as error:
            raise DeviceLost(f"playback stopped: {error!r}") from None

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

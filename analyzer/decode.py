"""Decode any audio file a user has into float32 samples, with bounded memory.

API
---
- :func:`load` — samples of a file (optionally a slice of it, resampled, mono or not).
- :func:`probe` — sample rate, channels, duration and tags, without decoding.
- :func:`check_audio` — reject silent or too-short audio (the analyzer's input check).
- :class:`AudioInfo` — what :func:`probe` returns.
- :class:`DecodeError` — every failure, naming the file and the reason.

libsndfile (via soundfile) reads wav/flac/ogg/aiff directly; everything else (mp3, m4a/aac,
opus, wma, video containers...) is streamed from an ``ffmpeg`` subprocess as raw float32 through a
pipe, no temporary files. Both paths feed the same block sink, which downmixes and resamples block
by block (soxr streaming), so peak memory is the output array plus one block.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["load", "probe", "check_audio", "AudioInfo", "DecodeError", "MAX_DURATION_S",
           "SOUNDFILE_EXTENSIONS", "AUDIO_EXTENSIONS"]

#: Longest stretch :func:`load` decodes by default (seconds): bounds memory on huge files.
MAX_DURATION_S = 30 * 60.0
#: Extensions read by libsndfile; the rest go through ffmpeg.
SOUNDFILE_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff",
                                  ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64"})
#: Extensions a folder scan treats as audio.
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS | frozenset({
    ".mp3", ".m4a", ".aac", ".mp4", ".opus", ".wma", ".webm", ".mka", ".alac", ".ape", ".wv"})

_BLOCK_FRAMES = 1 << 17  # frames per decoded block: ~3 s at 44.1 kHz, 1 MiB per channel


class DecodeError(ValueError):
    """A file could not be turned into usable audio. ``str()`` names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{Path(path).name}: {reason}")


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header.

    ``sr`` in Hz; ``duration_s`` in seconds (0 when the container does not say); ``tags`` maps
    lower-case tag names ("title", "artist", "album"...) to their text.
    """

    sr: int
    channels: int
    duration_s: float
    tags: dict[str, str] = field(default_factory=dict)


def probe(path) -> AudioInfo:
    """Sample rate, channel count, duration and tags of an audio file, without decoding it.

    Raises
    ------
    DecodeError
        The file is missing, unreadable or holds no audio stream.

    Examples
    --------
    >>> import os, tempfile, soundfile as sf
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.flac")
    >>> sf.write(path, np.zeros((44100, 2), np.float32), 44100)
    >>> info = probe(path)
    >>> info.sr, info.channels, info.duration_s
    (44100, 2, 1.0)
    """
    path = _existing(path)
    if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
        import soundfile as sf
        try:
            with sf.SoundFile(os.fsencode(path)) as f:
                tags = {k: v for k in ("title", "artist", "album") if (v := _sf_tag(f, k))}
                info = AudioInfo(f.samplerate, f.channels, f.frames / f.samplerate, tags)
            if shutil.which("ffprobe") is None or info.tags:
                return info
            # libsndfile does not read every tag layout; ffprobe does, when it is there.
            return AudioInfo(info.sr, info.channels, info.duration_s, _ffprobe(path).tags)
        except (sf.LibsndfileError, RuntimeError):
            pass  # not what the extension says: let ffmpeg have a go
    return _ffprobe(path)


def load(path, *, sr: int | None = None, mono: bool = True, offset_s: float = 0.0,
         duration_s: float | None = None,
         max_duration_s: float = MAX_DURATION_S) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32 samples.

    Parameters
    ----------
    path : str or Path
        Any audio file libsndfile or ffmpeg can read.
    sr : int or None
        Target sample rate (Hz); None keeps the file's rate. Resampling uses soxr (HQ), streamed.
    mono : bool
        Average the channels into one.
    offset_s, duration_s : float
        Decode only ``[offset_s, offset_s + duration_s)`` seconds of the file (None: to the end).
    max_duration_s : float
        Refuse to decode more than this many seconds (memory bound); a longer file raises unless
        ``duration_s`` selects a shorter slice.

    Returns
    -------
    y : np.ndarray [shape=(n,) if mono else (channels, n), dtype=float32]
        Finite: a NaN or infinite sample in a float file comes back as 0.
    sr : int
        The sample rate of ``y``.

    Raises
    ------
    DecodeError
        Missing, unreadable or non-audio file, no samples in the selection, over the length limit,
        or ffmpeg needed but not installed.

    Examples
    --------
    >>> import os, tempfile, soundfile as sf
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> t = np.arange(44100) / 44100                  # 1 s of A4, stereo
    >>> sf.write(path, np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1) * 0.5, 44100)
    >>> y, sr = load(path, sr=22050)
    >>> y.dtype, y.shape, sr
    (dtype('float32'), (22050,), 22050)
    """
    path = _existing(path)
    if offset_s < 0 or (duration_s is not None and duration_s < 0):
        raise ValueError("offset_s and duration_s must be >= 0")
    limit_s = max_duration_s if duration_s is None else min(duration_s, max_duration_s)
    if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
        try:
            return _load_soundfile(path, sr, mono, offset_s, duration_s, limit_s)
        except _NotSoundfile:
            pass  # e.g. an .ogg holding a codec libsndfile lacks: ffmpeg reads it
    return _load_ffmpeg(path, sr, mono, offset_s, duration_s, limit_s)


def check_audio(y: np.ndarray, sr: int, *, path, min_duration_s: float = 10.0,
                silence_db: float = -60.0) -> None:
    """Raise :class:`DecodeError` if ``y`` is too short or silent to analyze.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
    sr : int
    path : str or Path
        Named in the error.
    min_duration_s : float
        Shortest accepted length, seconds.
    silence_db : float
        Audio whose peak stays below this level (dBFS) counts as silent.
    """
    duration = y.shape[-1] / sr
    if duration < min_duration_s:
        raise DecodeError(path, f"too short: {duration:.1f} s, the minimum is "
                                f"{min_duration_s:g} s")
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if not np.isfinite(peak) or peak <= 10 ** (silence_db / 20):
        raise DecodeError(path, f"silent: the peak level is below {silence_db:g} dBFS")


# --- implementation ---------------------------------------------------------------------------

class _NotSoundfile(Exception):
    """libsndfile cannot read this file; another decoder may."""


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DecodeError(path, "no such file")
    if path.is_dir():
        raise DecodeError(path, "is a folder, not an audio file")
    if not os.access(path, os.R_OK):
        raise DecodeError(path, "unreadable: permission denied")
    if path.stat().st_size == 0:
        raise DecodeError(path, "empty file")
    return path


def _sf_tag(f, name: str) -> str:
    try:
        return (getattr(f, name) or "").strip()
    except (AttributeError, RuntimeError):
        return ""


class _Sink:
    """Collects decoded (frames, channels) blocks: downmix, resample, store; bounded memory."""

    def __init__(self, path, sr_in: int, channels: int, sr_out: int | None, mono: bool,
                 limit_frames: int | None, expected_frames: int | None):
        self.path, self.sr_in, self.mono = path, sr_in, mono
        self.sr_out = sr_in if sr_out is None else int(sr_out)
        self.channels = 1 if mono else channels
        self.limit_frames = limit_frames
        self.resampler = None
        if self.sr_out != sr_in:
            import soxr
            self.resampler = soxr.ResampleStream(sr_in, self.sr_out, self.channels,
                                                 dtype="float32")
        self.ratio = self.sr_out / sr_in
        # Preallocate (channels, n) when the length is known; otherwise grow a list of blocks.
        self.out = None
        if expected_frames is not None:
            self.out = np.empty((self.channels, int(np.ceil(expected_frames * self.ratio)) + 64),
                                np.float32)
        self.blocks: list[np.ndarray] = []
        self.n_out = 0
        self.n_in = 0

    def add(self, block: np.ndarray, *, last: bool = False) -> None:
        """Take one (frames, channels) float32 block."""
        self.n_in += len(block)
        if not np.isfinite(block).all():
            # A float file can hold NaN or inf samples (a broken render): silence them, or the
            # resampler and every sum after it would spread them over the whole song.
            block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
        if self.mono and block.shape[1] != 1:
            block = block.mean(axis=1, keepdims=True, dtype=np.float32)
        if self.resampler is not None:
            block = self.resampler.resample_chunk(block, last=last)
        if self.out is not None and self.n_out + len(block) <= self.out.shape[1]:
            self.out[:, self.n_out:self.n_out + len(block)] = block.T
        else:
            if self.out is not None:  # the estimate was short: fall back to growing
                self.blocks.append(self.out[:, :self.n_out])
                self.out = None
            self.blocks.append(np.array(block.T, np.float32, copy=True))
        self.n_out += len(block)

    def over_limit(self) -> bool:
        return self.limit_frames is not None and self.n_in > self.limit_frames

    def result(self) -> tuple[np.ndarray, int]:
        if self.resampler is not None:
            self.add(np.zeros((0, self.channels), np.float32), last=True)
        if self.n_in == 0:
            raise DecodeError(self.path, "no audio samples in the selected range")
        if self.out is not None:
            y = self.out[:, :self.n_out]  # a view: no copy of the whole signal
        else:
            y = np.concatenate(self.blocks, axis=1)
        return (y[0] if self.mono else y), self.sr_out


def _limit_error(path, limit_s: float) -> DecodeError:
    # Said to the command line's user too: a chart is of one song, so no API hint here.
    return DecodeError(path, f"longer than the {limit_s / 60:g}-minute limit for one song "
                             "(split a long mix into its tracks)")


def _load_soundfile(path, sr, mono, offset_s, duration_s, limit_s):
    import soundfile as sf
    try:
        f = sf.SoundFile(os.fsencode(path))  # bytes: a name need not be valid UTF-8
    except (sf.LibsndfileError, RuntimeError) as error:
        raise _NotSoundfile from error
    with f:
        start = min(int(round(offset_s * f.samplerate)), f.frames)
        available = f.frames - start
        frames = available if duration_s is None else min(available,
                                                           int(round(duration_s * f.samplerate)))
        if duration_s is None and frames > limit_s * f.samplerate:
            raise _limit_error(path, limit_s)
        frames = min(frames, int(limit_s * f.samplerate))
        sink = _Sink(path, f.samplerate, f.channels, sr, mono, None, frames)
        if start:
            f.seek(start)
        remaining = frames
        try:
            while remaining > 0:
                block = f.read(min(_BLOCK_FRAMES, remaining), dtype="float32", always_2d=True)
                if not len(block):
                    break  # header overstated the length (truncated file)
                remaining -= len(block)
                sink.add(block)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise DecodeError(path, f"corrupt audio data: {error}") from None
        return sink.result()


def _ffmpeg_missing(path, tool: str) -> DecodeError:
    return DecodeError(path, f"{tool} is needed to decode {Path(path).suffix or 'this'} files "
                             "and was not found on PATH; install ffmpeg")


def _ffprobe(path) -> AudioInfo:
    exe = shutil.which("ffprobe")
    if exe is None:
        raise _ffmpeg_missing(path, "ffprobe")
    cmd = [exe, "-v", "error", "-select_streams", "a:0", "-show_entries",
           "stream=sample_rate,channels:stream_tags:format=duration:format_tags", "-of", "json",
           str(path)]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise DecodeError(path, "not an audio file" + (f" ({reason[-1].split(': ')[-1]})"
                                                         if reason else ""))
    data = json.loads(proc.stdout or b"{}")
    streams = data.get("streams") or []
    if not streams or int(streams[0].get("sample_rate") or 0) <= 0:
        raise DecodeError(path, "not an audio file (no audio stream)")
    stream, fmt = streams[0], data.get("format") or {}
    tags = {}
    for source in (fmt.get("tags") or {}, stream.get("tags") or {}):  # ogg keeps them per stream
        for key, value in source.items():
            if str(value).strip():
                tags.setdefault(key.lower(), str(value).strip())
    try:
        duration = float(fmt.get("duration") or 0.0)
    except ValueError:
        duration = 0.0
    return AudioInfo(int(stream["sample_rate"]), int(stream.get("channels") or 1), duration, tags)


def _load_ffmpeg(path, sr, mono, offset_s, duration_s, limit_s):
    info = _ffprobe(path)
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise _ffmpeg_missing(path, "ffmpeg")
    cmd = [exe, "-nostdin", "-v", "error"]
    if offset_s:
        cmd += ["-ss", f"{offset_s:.6f}"]
    cmd += ["-i", str(path), "-map", "0:a:0", "-vn"]
    if duration_s is not None:
        cmd += ["-t", f"{duration_s:.6f}"]
    cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    limit_frames = int(limit_s * info.sr)
    expected = None
    if info.duration_s > 0:
        span = max(info.duration_s - offset_s, 0.0)
        expected = int(min(span if duration_s is None else min(span, duration_s), limit_s)
                       * info.sr) + info.sr  # headroom: container durations are approximate
    sink = _Sink(path, info.sr, info.channels, sr, mono, limit_frames, expected)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    errors = _StderrTail(proc.stderr)
    frame_bytes = 4 * info.channels
    block_bytes = _BLOCK_FRAMES * frame_bytes
    pending = b""
    try:
        while True:
            chunk = proc.stdout.read(block_bytes)
            if not chunk:
                break
            pending += chunk
            usable = len(pending) - len(pending) % frame_bytes
            if usable:
                block = np.frombuffer(pending[:usable], np.float32).reshape(-1, info.channels)
                pending = pending[usable:]
                sink.add(block)
                if sink.over_limit():
                    if duration_s is None:
                        raise _limit_error(path, limit_s)
                    break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()
        errors.join()
    if proc.returncode not in (0, -9) and sink.n_in == 0:
        message = errors.text.strip().splitlines()
        raise DecodeError(path, "could not decode" + (f": {message[-1]}" if message else ""))
    return sink.result()


class _StderrTail(threading.Thread):
    """Read a pipe to its end in the background (keeps ffmpeg from blocking on stderr)."""

    def __init__(self, pipe, keep: int = 4096):
        super().__init__(daemon=True)
        self.pipe, self.keep, self.text = pipe, keep, ""
        self.start()

    def run(self):
        tail = b""
        for chunk in iter(lambda: self.pipe.read(4096), b""):
            tail = (tail + chunk)[-self.keep:]
        self.pipe.close()
        self.text = tail.decode(errors="replace")

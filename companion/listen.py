"""The identify loop: which song is playing, when it changes, and charting unknown songs.

:class:`MonoRing` is the rolling buffer the audio thread writes (a mono downmix, indexed by the
sample position on the audio clock). :class:`Listener` is stepped with the stream position by
the control thread (or inline, offline): about once a second of stream it fingerprints the last
seconds (:func:`chart_store.fingerprint.fingerprint`) and asks the resolver (local store, then a
server; live, the server on a thread of its own, whose answer a later step takes). It reports
:class:`ListenEvent` s:

- ``identified`` — a chart and the offset (chart_s - stream_s) of the match;
- ``changed`` — a different chart took over (the song changed), also carrying the new chart;
- ``confirmed`` — a recheck matched the chart playing (with the match's offset);
- ``lost`` — the known song is gone (silence, or a song no store knows);
- ``recording`` / ``recorded`` — no chart exists: the stream is recorded, and when the song ends
  it is written to ``LOOPJAM_HOME/recordings`` and analysed into a chart by a background process
  (``python -m companion.listen analyze WAV``) that stores it, so the next play has one.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chart_store.chart import DEFAULT_LANES

__all__ = ["MonoRing", "ListenEvent", "Listener", "ListenError", "analyze_recording"]


#: Two short-window matches agree when their offsets (chart minus stream seconds) are this close:
#: a few fingerprint items (0.124 s each), well under any repeat of a passage.
AGREE_S = 0.25


class ListenError(ValueError):
    """Bad listener parameters."""


class MonoRing:
    """Preallocated mono ring of the last ``capacity`` samples, addressed by absolute position.

    The audio thread calls :meth:`write_block` (no allocation); readers copy out windows with
    :meth:`read`. Samples lost to an xrun (a jump in position) read as zeros.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ListenError(f"ring capacity must be >= 1, got {capacity}")
        self.buffer = np.zeros(capacity, dtype=np.float32)
        self.end = 0  # absolute position one past the newest sample

    @property
    def capacity(self) -> int:
        return self.buffer.size

    def write_block(self, block: np.ndarray, position: int) -> None:
        """Store the downmix of ``block`` (frames, channels) whose first sample is ``position``."""
        if position > self.end:
            self._zero(self.end, min(position, self.end + self.capacity) - self.end)
        n = block.shape[0]
        start = position % self.capacity
        first = min(n, self.capacity - start)
        _downmix(block[:first], self.buffer[start:start + first])
        if n > first:
            _downmix(block[first:], self.buffer[:n - first])
        self.end = position + n

    def _zero(self, position: int, n: int) -> None:
        start = position % self.capacity
        first = min(n, self.capacity - start)
        self.buffer[start:start + first] = 0.0
        self.buffer[:n - first] = 0.0

    def read(self, start: int, out: np.ndarray) -> np.ndarray:
        """Copy samples ``[start, start + len(out))`` into ``out``; they must still be held."""
        n = out.size
        if start < self.end - self.capacity or start + n > self.end:
            raise ListenError(f"samples {start}..{start + n} are not in the ring "
                              f"({max(0, self.end - self.capacity)}..{self.end})")
        a = start % self.capacity
        first = min(n, self.capacity - a)
        out[:first] = self.buffer[a:a + first]
        out[first:] = self.buffer[:n - first]
        return out

    def oldest(self) -> int:
        return max(0, self.end - self.capacity)


def _downmix(block: np.ndarray, out: np.ndarray) -> None:
    """Channel mean of ``block`` (frames, channels) into ``out`` without temporaries
    (``np.mean(axis=1, out=...)`` allocates one per call)."""
    np.copyto(out, block[:, 0])
    for c in range(1, block.shape[1]):
        np.add(out, block[:, c], out=out)
    if block.shape[1] > 1:
        np.multiply(out, 1.0 / block.shape[1], out=out)


@dataclass(frozen=True)
class ListenEvent:
    """What the listener noticed. ``kind`` is one of identified, changed, confirmed, lost,
    recording, recorded; ``stream_s`` when (stream seconds); ``chart`` and ``match`` for the
    first three;
    ``offset_s`` is chart_s - stream_s from the match, ``from_s`` the stream second the matched
    audio starts; ``path`` the recording (recorded)."""

    kind: str
    stream_s: float
    chart: object = None
    match: object = None
    offset_s: float = 0.0
    from_s: float = 0.0
    path: Path | None = None
    process: subprocess.Popen | None = None


class _Recording:
    """An unknown song being recorded, written to disk as it comes (a long stream is not held
    in memory, and ending it writes nothing more): float32 WAV, ``.part`` until finished."""

    def __init__(self, folder: Path, sr: int, loud: float):
        import soundfile

        folder.mkdir(parents=True, exist_ok=True)
        stamp, n = time.strftime("recording-%Y%m%d-%H%M%S"), 1
        self.path = folder / f"{stamp}.wav"
        while self.path.exists() or self.path.with_name(self.path.name + ".part").exists():
            n += 1   # two songs recorded within a second
            self.path = folder / f"{stamp}-{n}.wav"
        self._part = self.path.with_name(self.path.name + ".part")
        self._file = soundfile.SoundFile(os.fsencode(self._part), "w", samplerate=sr,
                                         channels=1, subtype="FLOAT", format="WAV")
        self._loud = loud
        self.frames = 0
        self._sounding = 0   # frames up to the last loud sample: the trailing silence is cut

    def write(self, y: np.ndarray) -> None:
        self._file.write(y)
        loud = np.flatnonzero(np.abs(y) > self._loud)
        if loud.size:
            self._sounding = self.frames + int(loud[-1]) + 1
        self.frames += y.size

    def finish(self, min_frames: int) -> Path | None:
        """Close it, cut the silence that ended the song; the finished file's path, or None
        (deleted) when less than ``min_frames`` of it sounded."""
        self._file.truncate(self._sounding)
        self._file.close()
        if self._sounding < min_frames:
            self._part.unlink(missing_ok=True)
            return None
        os.replace(self._part, self.path)
        return self.path

    def discard(self) -> None:
        self._file.close()
        self._part.unlink(missing_ok=True)


class Listener:
    """Identify loop over a :class:`MonoRing`.

    Parameters
    ----------
    resolver
        Anything with ``identify(fp) -> Match | None`` and ``get(chart_id) -> Chart``
        (:class:`chart_store.resolver.ChartResolver`).
    sr : int
        Stream sample rate, Hz.
    every_s : float
        Stream seconds between identification attempts while no song is known.
    window_s, min_window_s : float
        Longest and shortest audio fingerprinted per attempt, seconds.
    recheck_s : float
        While a song is known: seconds between checks that it is still the one playing.
    retry_s : float
        After :meth:`recheck` (the sync lost its place: a seek), seconds between attempts until
        one matches (each with a longer window), up to ``sure_window_s`` of audio.
    first_recheck_s : float
        The first check after an identification comes sooner: the few seconds first matched
        may belong to another copy of a repeated passage, which a longer window tells apart.
    sure_window_s : float
        A match from a window this long is taken at its word. A shorter window's match of a
        song other than the one playing counts only when the next attempt (one ``every_s``
        later, with a longer window) names the same chart at the same place: at 100,000 indexed
        tracks, half of the 3 s excerpts of unknown songs still find some chart under the bit
        error threshold, none of the 5 s ones (``benchmarks/identify/scale.py``).
    record_after_s : float
        Seconds of unidentified sound after which the stream is recorded for charting.
    silence_db : float
        RMS level (dBFS) below which audio counts as silence.
    song_gap_s : float
        Silence that ends a song (a recording is then finished).
    analyze : bool
        Start the background analysis of recordings (False: only write them).
    lanes : int
        Lanes of the charts made from recordings.
    background_remote : bool
        Ask the chart server on a thread of its own, and take its answer in a later step, so
        that a slow or dead server never stalls the thread that steps the listener (live). False
        (offline runs): it is asked inline, and a run's events do not depend on thread timing.
        Either way the local store is asked first, inline.
    """

    def __init__(self, resolver, *, sr: int, every_s: float = 1.0, window_s: float = 10.0,
                 min_window_s: float = 3.0, recheck_s: float = 5.0, retry_s: float = 0.5,
                 first_recheck_s: float = 2.0, sure_window_s: float = 5.0,
                 record_after_s: float = 8.0,
                 silence_db: float = -55.0, song_gap_s: float = 2.0, analyze: bool = True,
                 recordings_dir: Path | None = None, min_recording_s: float = 20.0,
                 max_recording_s: float = 15 * 60.0, lanes: int = DEFAULT_LANES,
                 background_remote: bool = False):
        if not 0 < min_window_s <= window_s:
            raise ListenError("need 0 < min_window_s <= window_s")
        self.resolver, self.sr = resolver, int(sr)
        self.every_s, self.window_s, self.min_window_s = every_s, window_s, min_window_s
        self.recheck_s, self.record_after_s, self.retry_s = recheck_s, record_after_s, retry_s
        self.first_recheck_s, self.sure_window_s = first_recheck_s, sure_window_s
        self.silence_rms = 10 ** (silence_db / 20)
        self.song_gap_s, self.analyze, self.lanes = song_gap_s, analyze, lanes
        self.recordings_dir = recordings_dir
        self.min_recording_s, self.max_recording_s = min_recording_s, max_recording_s
        self._window = np.zeros(int(window_s * self.sr), dtype=np.float32)
        self.chart = None            # the chart playing now
        self._next_try = 0.0         # stream second of the next attempt
        self._sound_start: float | None = None   # when the current unidentified sound began
        self._matched_at = 0.0       # stream second the chart playing last matched
        self._quiet_since: float | None = None
        self._misses = 0
        self._candidate: tuple[str, float] | None = None  # (chart id, offset) to be confirmed
        self._current_from = 0       # audio before this position belongs to another passage
        self._rechecking = False     # a recheck was asked for and has not matched yet
        self._recording: _Recording | None = None
        self._recorded_to = 0        # ring position copied into the recording
        self.background_remote = background_remote
        # The server's answer being waited for, and the attempt's audio: (answer, start, seconds).
        self._lookup: tuple[Future, int, float] | None = None

    @property
    def recording(self) -> bool:
        """Whether the stream is being recorded (an unknown song, to chart afterwards)."""
        return self._recording is not None

    # -- the loop -----------------------------------------------------------------------------
    def step(self, ring: MonoRing, *, silent: bool) -> list[ListenEvent]:
        """Advance to ``ring.end``; ``silent`` says the last fraction of a second was silence."""
        now = ring.end / self.sr
        events: list[ListenEvent] = []
        self._track_silence(now, silent)
        if self._recording is not None:
            events += self._record(ring, now)
        if self._lookup is not None:       # an attempt waits for the server's answer
            answer, start, seconds = self._lookup
            if not answer.done():
                return events
            self._lookup = None
            events += self._outcome(start, seconds, answer.result(), now, ring)
        if now < self._next_try or self._sound_start is None:
            return events
        heard = now - max(self._sound_start, ring.oldest() / self.sr,
                          self._current_from / self.sr)
        if heard < self.min_window_s:
            return events
        self._next_try = now + (self.every_s if self.chart is None else self.recheck_s)
        seconds = min(heard, self.window_s)
        start, match = self._identify(ring, seconds)
        if self._lookup is not None:
            return events
        return events + self._outcome(start, seconds, match, now, ring)

    def _outcome(self, start: int, seconds: float, match, now: float,
                 ring: MonoRing) -> list[ListenEvent]:
        """What an attempt's answer ``match`` (None: no chart) on the ``seconds`` of audio from
        ring position ``start`` means, ``now`` (stream seconds)."""
        events: list[ListenEvent] = []
        if match is not None:
            if self._confirmed(match, start, seconds):
                events += self._matched(match, start, now, ring)
            else:
                self._next_try = now + self.every_s  # the second opinion, with a longer window
            return events
        self._candidate = None  # a confirmation must come from the very next attempt
        if self.chart is not None and self._rechecking and seconds < self.sure_window_s:
            # The audio since the jump found nothing yet: again soon, with a longer window
            # (not a miss: a few seconds of a passage can fail where more match; a window long
            # enough to be sure counts).
            self._next_try = now + self.retry_s
            return events
        if self.chart is not None:
            self._misses += 1
            if self._misses >= 3:  # three checks in a row: no longer this song
                self.chart = None
                self._misses = 0
                self._next_try = now
                # What follows is another song from about when this one last matched: its
                # identification (and a recording of it) starts there, not with the old song.
                if self._sound_start is not None:
                    self._sound_start = max(self._sound_start, self._matched_at)
                events.append(ListenEvent("lost", now))
            else:  # the song may have changed: its notes must not be judged for long
                self._next_try = now + self.every_s
        elif (self._recording is None and self._sound_start is not None
              and now - self._sound_start >= self.record_after_s
              and self.recordings_dir is not None):
            self._recording = _Recording(self.recordings_dir, self.sr, self.silence_rms)
            self._recorded_to = max(int(self._sound_start * self.sr), ring.oldest())
            events.append(ListenEvent("recording", now))
            events += self._record(ring, now)
        return events

    def recheck(self, *, since: int) -> None:
        """Fingerprint again as soon as there is enough audio from position ``since`` on (the
        sync lost the song there: a seek or a skip); older audio no longer counts. Asked again
        before that fingerprint was taken, the earlier start stands (the sync's doubt comes and
        goes while it searches; moving the start on would only delay the answer)."""
        pending = self._next_try == 0.0 and self._current_from > 0
        self._current_from = min(self._current_from, since) if pending else since
        self._next_try = 0.0
        self._rechecking = True
        self._lookup = None    # its answer is about audio from before the jump

    def recheck_at(self, stream_s: float) -> None:
        """Fingerprint again at stream second ``stream_s`` at the latest (a second opinion)."""
        self._next_try = min(self._next_try, stream_s)

    def finish(self, ring: MonoRing) -> list[ListenEvent]:
        """The stream ended: finish a recording in progress."""
        if self._recording is None:
            return []
        events = self._record(ring, ring.end / self.sr)   # closes it when the sound ended
        if self._recording is not None:
            events += self._close_recording(ring.end / self.sr)
        return events

    # -- internals ----------------------------------------------------------------------------
    def _track_silence(self, now: float, silent: bool) -> None:
        if silent:
            if self._quiet_since is None:
                self._quiet_since = now
            if now - self._quiet_since >= self.song_gap_s:
                self._sound_start = None
        else:
            self._quiet_since = None
            if self._sound_start is None:
                self._sound_start = now
                self._next_try = min(self._next_try, now + self.min_window_s)

    def warm_up(self) -> None:
        """Do the first fingerprint and lookup's one-off work now (loading libchromaprint:
        ~60 ms holding the GIL; the local store's catalogue), before a real-time audio thread
        runs beside the identify loop. Only the local store is asked: no network at start."""
        from chart_store.fingerprint import fingerprint

        noise = np.random.default_rng(0).uniform(-0.1, 0.1, int(self.min_window_s * self.sr))
        self._local.identify(fingerprint(noise.astype(np.float32), self.sr))

    @property
    def _local(self):
        """The local store: a ChartResolver's, or the resolver itself when it is a store."""
        return getattr(self.resolver, "local", self.resolver)

    def _identify(self, ring: MonoRing, seconds: float):
        from chart_store.fingerprint import fingerprint

        n = int(seconds * self.sr)
        start = ring.end - n
        y = ring.read(start, self._window[:n])
        if np.sqrt(np.mean(np.square(y))) < self.silence_rms:
            return start, None
        fp = fingerprint(y, self.sr)
        if self.background_remote:
            match = self._local.identify(fp)
            if match is None and getattr(self.resolver, "asks_remote", False):
                self._lookup = (_in_background(self.resolver.identify_remote, fp), start,
                                seconds)
            return start, match
        # Inline, while a chart plays, its rechecks ask the local store only (the chart is
        # there: a chart from the server is cached as it starts): a slow or dead server would
        # stall the judging for the request's timeout. A song the server alone knows is then
        # found once this one is lost.
        lookup = self.resolver if self.chart is None else self._local
        return start, lookup.identify(fp)

    def _confirmed(self, match, start: int, seconds: float) -> bool:
        """Whether ``match`` can be acted on: it is the song playing, its window was long enough
        to be sure, or the previous attempt named the same chart within :data:`AGREE_S`."""
        candidate = self._candidate
        self._candidate = None
        if seconds >= self.sure_window_s or (self.chart is not None
                                             and match.chart_id == self.chart.id):
            return True
        offset = match.offset_s - start / self.sr
        if (candidate is not None and candidate[0] == match.chart_id
                and abs(candidate[1] - offset) <= AGREE_S):
            return True
        self._candidate = (match.chart_id, offset)
        return False

    def _matched(self, match, start: int, now: float, ring: MonoRing) -> list[ListenEvent]:
        self._matched_at = now
        self._misses = 0
        self._rechecking = False
        offset = match.offset_s - start / self.sr
        if self.chart is not None and match.chart_id == self.chart.id:
            return [ListenEvent("confirmed", now, chart=self.chart, match=match, offset_s=offset,
                                from_s=start / self.sr)]
        events = []
        if self._recording is not None:  # the song we were recording turned out to be known
            self._recording.discard()
            self._recording = None
        kind = "identified" if self.chart is None else "changed"
        self.chart = self.resolver.get(match.chart_id)
        self._next_try = now + self.first_recheck_s
        events.append(ListenEvent(kind, now, chart=self.chart, match=match, offset_s=offset,
                                  from_s=start / self.sr))
        return events

    def _record(self, ring: MonoRing, now: float) -> list[ListenEvent]:
        start = max(self._recorded_to, ring.oldest())
        if ring.end > start:
            self._recording.write(ring.read(start, np.empty(ring.end - start, np.float32)))
            self._recorded_to = ring.end
        if (self._sound_start is None
                or self._recording.frames >= self.max_recording_s * self.sr):
            return self._close_recording(now)
        return []

    def _close_recording(self, now: float) -> list[ListenEvent]:
        recording, self._recording = self._recording, None
        path = recording.finish(int(self.min_recording_s * self.sr))
        if path is None:
            return []
        process = None
        if self.analyze:
            process = subprocess.Popen(
                [sys.executable, "-m", "companion.listen", "analyze", str(path),
                 str(self.lanes)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        return [ListenEvent("recorded", now, path=path, process=process)]


def _in_background(call, *args) -> Future:
    """``call(*args)`` on a daemon thread of its own (a chart-server lookup: one a second at
    most, and only while the local store has no answer; a daemon, so a hung request never holds
    up the exit); its future says when it is done."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(call(*args))
        except BaseException as error:   # re-raised by result(), on the caller's thread
            future.set_exception(error)

    threading.Thread(target=run, name="loopjam-lookup", daemon=True).start()
    return future


def analyze_recording(path, *, lanes: int = DEFAULT_LANES) -> str:
    """Chart a recorded stream (chart source "recorded-live") and put it in the local store,
    with the recording as its source file (an export or a preview finds it there); returns the
    chart id. Runs in the background process the listener starts."""
    from analyzer.batch import source_hash
    from analyzer.decode import load
    from analyzer.pipeline import ANALYSIS_SR, analyze_audio
    from chart_store.chart import ChartMeta, Source
    from chart_store.local import LocalStore

    y, sr = load(path, sr=ANALYSIS_SR, mono=True)
    meta = ChartMeta(title=f"Recorded {Path(path).stem.removeprefix('recording-')}",
                     source=Source.RECORDED_LIVE)
    chart = analyze_audio(y, sr, meta=meta, lanes=lanes)
    store = LocalStore()
    try:
        return store.put(chart, source_hash=source_hash(path), source_path=path)
    finally:
        store.close()


if __name__ == "__main__":  # python -m companion.listen analyze WAV [LANES]
    if len(sys.argv) not in (3, 4) or sys.argv[1] != "analyze":
        sys.exit("usage: python -m companion.listen analyze RECORDING.wav [LANES]")
    try:
        analyze_recording(sys.argv[2], lanes=int(sys.argv[3]) if len(sys.argv) == 4
                          else DEFAULT_LANES)
    except ValueError as error:  # DecodeError, NothingToChart: say why, no traceback
        sys.exit(f"loopjam: {sys.argv[2]}: {error}")

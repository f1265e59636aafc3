"""The live wiring: source -> identify/sync -> game -> note-removal processor -> sink.

Two loops share a :class:`LiveSession`:

- the **audio loop** (:meth:`LiveSession.audio_step`): read a block from the source, write its
  mono downmix into the :class:`~companion.listen.MonoRing`, run the processor, write the sink.
  Preallocated buffers only; no UI, disk or network (a file sink *is* the device).
- the **control loop** (:meth:`LiveSession.control_step`): onset envelope, the identify loop
  (:class:`~companion.listen.Listener`), sync (:class:`~companion.sync.Synchronizer`), the game
  engine and player, events for the log and snapshots for the overlay.

Live, each loop has its own thread and the control loop wakes on every block. Offline
(``--speed max``), :meth:`LiveSession.run` calls the control step inline after every block,
so the same code sees the same blocks at the same stream positions — the offline run *is* the
live path, just not waiting for the clock. Events go to an :class:`EventLog`, a writer thread
fed by a queue.

Clocks: a block's ``position`` counts samples on the audio clock (stream time = position / sr).
The :class:`~companion.sync.ClockMap` maps stream time to chart time. What the player hears now
left the source ``processor.latency_samples + sink.latency_samples`` ago, so the game clock is
``chart_time(heard_stream_s)`` less the audio calibration offset.
"""
from __future__ import annotations

import gc
import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chart_store.chart import DEFAULT_LANES
from companion.audio.base import STREAM_SR
from companion.game.calibration import Offsets, heard_time, input_time

__all__ = ["LiveOptions", "LiveSession", "EventLog", "PassThrough", "make_processor",
           "SessionTotals", "raise_priority"]


class PassThrough:
    """The processor with nothing to remove: output = input, no latency."""

    latency_samples = 0

    def process(self, block: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return block

    def set_sync(self, stream_s: float, chart_s: float) -> None:
        pass

    def miss(self, index: int) -> None:
        pass

    def hit(self, index: int) -> None:
        pass


# ======================= NOTE REMOVAL HOOK ==================================================
# The block processor between capture and output. Called once before the first block
# (chart=None) and again whenever a chart starts playing (``previous`` is the processor in use).
# Contract: ``process(block (frames, channels) float32, out=None) -> block`` (into ``out`` when
# it is given and the processor writes a new block at all) with a fixed
# ``latency_samples``; ``set_sync(stream_s, chart_s)``, ``miss(note_index)``, ``hit(note_index)``
# are called from the control thread. companion.removal plugs its NoteRemover in here.
# ``mask_mode`` is one of companion.config.MASK_MODES; "off" keeps the remover as a pure delay
# (the same latency as with removal, so the game clock does not move).
def make_processor(*, sr: int, channels: int, chart=None, notes=(), previous=None,
                   mask_mode: str = "drop-missed", background: bool = False):
    from companion.removal import make_remover  # a pure delay until a chart plays
    if mask_mode == "off":
        chart, notes, mask_mode = None, (), "drop-missed"
    return make_remover(sr=sr, channels=channels, chart=chart, notes=notes, previous=previous,
                        mode=mask_mode, background=background)
# ============================================================================================


@dataclass
class LiveOptions:
    """What ``loopjam play`` asks for (see its --help)."""

    source: str | None = None
    sink: str | None = None
    backend: str | None = None  # the audio backend preferred (config audio.backend)
    player: str = "keyboard"
    difficulty: str | None = None
    lanes: int | None = None   # the most lanes played: a chart with more is folded onto them
    speed: str = "realtime"
    log: Path | None = None
    overlay: bool = False
    sr: int = STREAM_SR
    channels: int = 2
    block_frames: int = 1024  # see loopjam play --block: fewer wake-ups, less CPU
    sink_buffer_frames: int = 2048
    offsets: Offsets = field(default_factory=Offsets)
    remote_url: str | None = None
    record_unknown: bool = True
    mask_mode: str = "drop-missed"   # companion.config.MASK_MODES
    record_inputs: Path | None = None  # replay file of the inputs (see loopjam play --help)
    sync_every_s: float = 0.25
    trace_path: Path | None = None   # .npy of per-block audio-loop timings (diagnosis)
    trace_blocks: int = 200_000


class EventLog:
    """JSON Lines event log written by its own thread; :meth:`write` only enqueues."""

    def __init__(self, path: Path | None, *, echo=None):
        self.path = path
        self.echo = echo
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._file = open(path, "w", encoding="utf-8") if path is not None else None
        self._thread = threading.Thread(target=self._run, name="loopjam-log", daemon=True)
        self._thread.start()

    def write(self, event: dict) -> None:
        self._queue.put(event)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                break
            if self._file is not None:
                self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
                if self._queue.empty():
                    self._file.flush()
            if self.echo is not None:
                self.echo(event)

    def close(self) -> None:
        """Write what is queued, then close (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._file is not None and not self._file.closed:
            self._file.close()


@dataclass
class SessionTotals:
    """Results over every chart played in the session."""

    score: int = 0
    hits: int = 0
    misses: int = 0
    weighted: float = 0.0  # sum of accuracy x judged notes

    def add(self, engine) -> None:
        judged = engine.hits + engine.misses
        self.score += engine.score
        self.hits += engine.hits
        self.misses += engine.misses
        self.weighted += engine.accuracy * judged

    @property
    def accuracy(self) -> float:
        """As :attr:`GameEngine.accuracy <companion.game.engine.GameEngine.accuracy>`: 1.0
        before any note is judged, as the overlay shows it."""
        judged = self.hits + self.misses
        return self.weighted / judged if judged else 1.0


class LiveSession:
    """One run of the live path (see the module docstring).

    ``DISAGREE_S``: a fingerprint recheck farther than this from the sync's offset, twice and
    consistently, resets the sync to the fingerprint's offset (unless the sync's place is
    :attr:`~companion.sync.Synchronizer.confirmed`).

    Parameters
    ----------
    options : LiveOptions
    source, sink
        Opened :class:`companion.audio.Source` and :class:`companion.audio.Sink`.
    resolver
        ``identify(fp)`` / ``get(chart_id)`` (default: a ChartResolver created in the control
        thread, which owns the SQLite connection).
    log : EventLog
    state_box, key_queue
        The overlay's snapshot box and key queue (None without an overlay).
    stop_event : threading.Event, optional
        Set to stop the run (default: a fresh one, :attr:`stop_event`).
    """

    DISAGREE_S = 1.0
    #: Stream seconds after a disagreeing recheck until the next one (its window then holds
    #: new audio too).
    SECOND_OPINION_S = 1.5
    #: Chart seconds ahead that a bot known to miss (miss-all) declares its misses.
    DECLARE_AHEAD_S = 2.0
    #: Seconds without a block from the device before a ``stalled`` event.
    STALL_S = 2.0
    #: Seconds of audio between two runs of the control loop (game clock, judgements, the
    #: overlay's snapshots): 40 a second is smooth for all of them. (20 a second measured no
    #: cheaper in benchmarks/live/realtime.py: the control thread's cost is its work.)
    CONTROL_EVERY_S = 0.025

    def __init__(self, options: LiveOptions, *, source, sink, log: EventLog, resolver=None,
                 state_box=None, key_queue=None, stop_event: threading.Event | None = None):
        from analyzer.features import OnsetStream
        from companion.audio import Block
        from companion.listen import MonoRing

        self.options, self.source, self.sink, self.log = options, source, sink, log
        self.sr, self.channels = source.sr, source.channels
        self.block = Block.empty(source.block_frames, source.channels)
        self._out = np.empty((source.block_frames, source.channels), np.float32)
        self.ring = MonoRing(int(30 * self.sr))
        self.onsets = OnsetStream(self.sr, capacity=int(30 * 100))
        self._chunk = np.zeros(self.sr // 10, dtype=np.float32)
        self._resolver = resolver
        self._remote_reported: str | None = None   # the server failure last logged
        self.state_box, self.key_queue = state_box, key_queue
        self.processor = make_processor(sr=self.sr, channels=self.channels,
                                        mask_mode=options.mask_mode)
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.end_reason = "stopped"
        self.error: BaseException | None = None
        # Written by the audio loop, read by the control loop.
        self._end = 0
        self._dropped = 0  # samples the source dropped (gaps): never given to the processor
        # (end, time.monotonic() when that block was written): one tuple, so that a reader
        # never pairs one block's position with another's time.
        self._written = (0, time.monotonic())
        self._wake = threading.Event()
        self._next_control = 0  # stream position of the next control run
        self._xruns = (0, 0, 0)  # overruns, underruns, dropped samples last reported
        self._next_xrun_report = 0.0
        # Control state.
        self.listener = None
        self.sync = None
        self._band_rows = 0  # live band rows per sync update (see _sync_band_rows)
        self.clock = None
        self.chart = None
        self.track = None
        self.lanes = 0  # of the track played
        self.engine = None
        self.player = None
        self.difficulty: str | None = None
        self.recorder = None  # InputRecorder of the chart playing (--record-inputs)
        self._charts_played = 0
        self.totals = SessionTotals()
        self._analysed = 0
        self._quiet_since: float | None = 0.0
        self._sound_since = 0.0  # stream s the sound last came back
        self._next_sync_step = 0.0
        self._next_sync_log = 0.0
        self._next_snapshot = 0.0
        self._last_game_time: float | None = None
        self.identified_after_s: float | None = None
        self._disagreement: float | None = None
        self.background: list = []
        self.cpu = {"audio_s": 0.0, "control_s": 0.0}
        self.blocks = 0
        self.max_block_s = 0.0
        self.audio_priority = "normal"
        # (position, read returned, processed, written) per block, perf_counter seconds.
        self.trace = (np.zeros((options.trace_blocks, 4)) if options.trace_path is not None
                      else None)

    # -- audio loop ---------------------------------------------------------------------------
    def audio_step(self) -> bool:
        """One block through capture -> ring -> processor -> sink; False at the source's end."""
        block = self.block
        if not self.source.read(block):
            return False
        t0 = time.perf_counter()
        self.ring.write_block(block.valid, block.position)
        out = self.processor.process(block.valid, self._out[:block.frames])
        t1 = time.perf_counter()
        if block.gap:  # what follows the lost samples keeps its place in the output
            self.sink.skip(block.gap)
        self.sink.write(out)
        self._dropped += block.gap
        self._end = block.position + block.frames
        self._written = (self._end, time.monotonic())
        if self.trace is not None and self.blocks < self.trace.shape[0]:
            self.trace[self.blocks] = (block.position, t0, t1, time.perf_counter())
        self.blocks += 1
        self.max_block_s = max(self.max_block_s, t1 - t0)
        return True

    # -- control loop -------------------------------------------------------------------------
    @property
    def output_latency_samples(self) -> int:
        return int(self.processor.latency_samples) + int(self.sink.latency_samples)

    def stream_s_at(self, wall_time: float) -> float:
        """Stream second being heard at ``wall_time`` (``time.monotonic()``).

        Between blocks it runs on with the wall clock, but no further than the output still
        has to play (its buffer and one block): when the device stops delivering, the game
        clock stops with the sound instead of judging notes nobody heard."""
        end, end_wall = self._written
        s = (end - self.output_latency_samples) / self.sr
        if self.options.speed == "realtime":
            run_on_s = (self.sink.latency_samples + self.block.frames) / self.sr
            s += min(wall_time - end_wall, run_on_s)
        return s

    def game_time_at(self, wall_time: float) -> float | None:
        clock = self.clock
        if clock is None:
            return None
        return heard_time(clock.chart_time(self.stream_s_at(wall_time)), self.options.offsets)

    def control_step(self) -> None:
        """Catch up with the audio loop: envelope, identify, sync, game, events."""
        end = self._end
        if self.listener is None:
            self._start_listener()
        silent = self._feed_onsets(end)
        now = end / self.sr
        if now >= self._next_sync_step:
            self._next_sync_step = now + self.options.sync_every_s
            for event in self.listener.step(self.ring, silent=silent):
                self._on_listen(event, now)
            self._report_remote(now)
            if self.sync is not None:
                n = min(self.onsets.frames_done, self.sync.window, self.onsets.capacity)
                if n:
                    jumped = self.sync.jump_since_s
                    self.sync.update(self.onsets.latest(n), end_frame=self.onsets.frames_done,
                                     silent=silent, since_s=self._quiet_since if silent
                                     else self._sound_since, bands=self._live_bands())
                    if jumped is None and self.sync.jump_since_s is not None:
                        # a second opinion on where we are, from the audio after the jump
                        self.listener.recheck(since=int(self.sync.jump_since_s * self.sr))
                self._publish_clock(self.sync.clock_map(), now)
        if self.clock is not None:
            self._game_step(self.stream_s_at(time.monotonic()), now)
            if now >= self._next_sync_log:
                self._next_sync_log = now + self.options.sync_every_s
                self.log.write({"event": "sync", "stream_s": round(now, 4),
                                "chart_s": round(self.clock.chart_time(now), 4),
                                "status": self.clock.status.value})
        if self.state_box is not None and time.monotonic() >= self._next_snapshot:
            self._next_snapshot = time.monotonic() + 0.05
            self._publish_snapshot()

    def _sync_band_rows(self, reference) -> int:
        """Rows of live coarse bands each sync update gets: a window's worth when the chart's
        bands are the onset stream's kind, else 0 (older charts have none: the sync then goes
        by the envelope alone)."""
        from analyzer.features import BAND_RATE, N_BANDS

        if self.sync.band_rate != BAND_RATE or reference.bands.shape[1] != N_BANDS:
            return 0
        return self.sync.window // self.sync.band_pool

    def _live_bands(self):
        """The onset stream's latest coarse bands for the sync (None when it takes none)."""
        rows = min(self.onsets.rows_done, self._band_rows)
        return self.onsets.latest_bands(rows) if rows else None

    def _start_listener(self) -> None:
        from chart_store.home import loopjam_home
        from companion.listen import Listener

        if self._resolver is None:
            from chart_store.resolver import ChartResolver
            self._resolver = ChartResolver(remote_url=self.options.remote_url)
        recordings = loopjam_home() / "recordings" if self.options.record_unknown else None
        # Live, the chart server is asked beside the control thread, which must not wait on
        # the network; a run at --speed max asks it inline, so its events do not depend on
        # how long the server takes.
        self.listener = Listener(self._resolver, sr=self.sr, recordings_dir=recordings,
                                 lanes=self.options.lanes or DEFAULT_LANES,
                                 background_remote=self.options.speed == "realtime")

    def _report_remote(self, now: float) -> None:
        """Say once when the chart server stops answering (only local charts are found then),
        and again if it fails anew after answering."""
        error = getattr(self._resolver, "remote_error", None)
        if error is not None and error != self._remote_reported:
            self.log.write({"event": "warning", "kind": "remote", "stream_s": round(now, 3),
                            "message": f"the chart server failed ({error}): only the local "
                                       "store is asked until it answers"})
        self._remote_reported = error

    def _feed_onsets(self, end: int) -> bool:
        """Push new ring samples into the onset stream; True when the last 0.3 s were silent."""
        start = max(self._analysed, self.ring.oldest())
        if start > self._analysed:  # fell behind the ring: keep frame positions with zeros
            self._chunk[:] = 0.0
            for pos in range(self._analysed, start, self._chunk.size):
                self.onsets.push(self._chunk[:min(self._chunk.size, start - pos)])
        threshold = self.listener.silence_rms ** 2
        while start < end:
            n = min(self._chunk.size, end - start)
            x = self.ring.read(start, self._chunk[:n])
            self.onsets.push(x)
            loud = float(np.dot(x, x)) > threshold * n
            if loud:
                if self._quiet_since is not None:  # sound (re)starts: say exactly where
                    first = int(np.argmax(np.abs(x) > self.listener.silence_rms))
                    self._sound_since = (start + first) / self.sr
                    self.log.write({"event": "sound", "stream_s": round(self._sound_since, 6)})
                self._quiet_since = None
            elif self._quiet_since is None:
                # Exactly where (the sync measures a pause by it): after the last audible sample.
                audible = np.flatnonzero(np.abs(x) > self.listener.silence_rms)
                self._quiet_since = (start + (int(audible[-1]) + 1 if audible.size else 0)
                                     ) / self.sr
            start += n
        self._analysed = end
        return self._quiet_since is not None and end / self.sr - self._quiet_since >= 0.3

    def _on_listen(self, event, now: float) -> None:
        from companion.sync import Synchronizer

        if event.kind in ("identified", "changed"):
            chart = event.chart
            if self.identified_after_s is None:
                self.identified_after_s = now
            self.log.write({"event": "identified", "chart_id": chart.id,
                            "offset_s": round(event.offset_s, 4), "after_s": round(now, 3),
                            "title": chart.meta.title, "artist": chart.meta.artist,
                            "source": chart.meta.source.value,
                            "charter": chart.meta.charter,
                            "confidence": round(event.match.confidence, 3),
                            "kind": event.kind})
            self._finish_chart()
            self.chart = chart
            self.difficulty = self._difficulty(chart)
            self.lanes, self.track = self._played_track(chart, self.difficulty)
            self._charts_played += 1
            if chart.sync is None:
                self.sync = None
                self._publish_clock(_fixed_clock(event.offset_s, now), now)
            else:
                self.sync = Synchronizer(chart.sync)
                self.sync.set_coarse(event.offset_s)
                self._band_rows = self._sync_band_rows(chart.sync)
            # In real time the stems are loaded beside, not on, the thread judging the notes
            # (seconds for a song's); a run at --speed max waits for them, as it waits for
            # nothing else.
            self.processor = make_processor(sr=self.sr, channels=self.channels, chart=chart,
                                            notes=self.track.notes, previous=self.processor,
                                            mask_mode=self.options.mask_mode,
                                            background=self.options.speed == "realtime")
        elif event.kind == "confirmed" and self.sync is not None:
            self.sync.hint(event.offset_s, stream_s=now, from_s=event.from_s)
            # The fingerprint places us elsewhere than the sync does (a repeated passage locked
            # wrongly): twice in a row, and in agreement with itself, it wins; not against a
            # place an earlier recheck confirmed and the envelope has not doubted since (then
            # the rechecks confuse copies of a passage: the sync weighs them).
            offset = self.clock.offset_at(now) if self.clock is not None else None
            if (offset is not None and abs(offset - event.offset_s) > self.DISAGREE_S
                    and not self.sync.confirmed):
                previous, self._disagreement = self._disagreement, event.offset_s
                if previous is not None and abs(previous - event.offset_s) < self.DISAGREE_S:
                    self.log.write({"event": "resync", "stream_s": round(now, 3),
                                    "from_offset_s": round(offset, 4),
                                    "to_offset_s": round(event.offset_s, 4)})
                    self.sync.reset()
                    self.sync.set_coarse(event.offset_s)
                    self._disagreement = None
                else:  # ask again soon rather than after the usual recheck interval
                    self.listener.recheck_at(now + self.SECOND_OPINION_S)
            else:
                self._disagreement = None
                if not self.sync.locked:
                    self.sync.set_coarse(event.offset_s)
        elif event.kind == "lost":
            self.log.write({"event": "lost", "stream_s": round(now, 3)})
            self._finish_chart()
        elif event.kind == "recording":
            self.log.write({"event": "recording", "stream_s": round(now, 3)})
        elif event.kind == "recorded":
            self.log.write({"event": "recorded", "stream_s": round(now, 3),
                            "path": str(event.path),
                            "analyzing": event.process is not None})
            if event.process is not None:
                self.background.append(event.process)

    def _difficulty(self, chart) -> str:
        wanted = self.options.difficulty
        if wanted and wanted in chart.difficulties:
            return wanted
        return chart.hardest()

    def _played_track(self, chart, difficulty: str):
        """The lanes and notes played: the chart's, folded onto the player's lanes when it
        has more (chord notes that meet on a lane become one note)."""
        from chart_store.chart import Track, fold_lanes

        track = chart.track(difficulty)
        lanes = min(chart.lanes, self.options.lanes or chart.lanes)
        if lanes == chart.lanes:
            return lanes, track
        return lanes, Track(fold_lanes(track.notes, lanes=chart.lanes, to_lanes=lanes))

    def _publish_clock(self, clock, now: float) -> None:
        if clock is None:
            return
        previous, self.clock = self.clock, clock
        heard = self.stream_s_at(time.monotonic())
        game = heard_time(clock.chart_time(heard), self.options.offsets)
        if self.engine is None:
            self._start_engine(game)
        elif previous is not None and self._last_game_time is not None:
            jump = game - self._last_game_time
            if jump < -1.0:  # seek back / replay: a fresh engine (not a finished song)
                self._finish_engine(song_ended=False)
                self._start_engine(game)
            elif jump > 1.0:  # seek forward / skipped part: those notes were never playable
                self.engine.skip_to(game)
        # The processor counts the samples it was given, which leave out dropped ones.
        self.processor.set_sync(heard - self._dropped / self.sr, clock.chart_time(heard))

    def _start_engine(self, game_time: float) -> None:
        from companion.game.engine import GameEngine
        from companion.game.players import make_player

        if self.options.record_inputs is not None and self.recorder is None:
            self.recorder = self._open_recorder()
        self.engine = GameEngine(self.track, on_input=self.recorder)
        self.engine.skip_to(game_time)
        self.player = make_player(self.options.player, track=self.track, keys=self.key_queue,
                                  clock=self._input_clock)
        self.player.poll(game_time)  # inputs before joining the song are not ours
        self._declared = 0
        if self.options.player == "miss-all":
            self._declare_misses(game_time)
        self._last_game_time = game_time

    def _declare_misses(self, game: float) -> None:
        """A bot known to miss says so ahead (:data:`DECLARE_AHEAD_S`), so the remover takes
        each whole note out with no judgement delay. A whole song's misses at once took the
        audio thread one 200 ms block to lay out (an underrun); a second's worth is cheap."""
        times = self.track.times
        start = max(self._declared, int(np.searchsorted(times, game - 1.0)))  # not the past
        end = int(np.searchsorted(times, game + self.DECLARE_AHEAD_S, side="right"))
        for index in range(start, end):
            self.processor.miss(index)
        self._declared = max(self._declared, end)

    def _input_clock(self, wall_time: float) -> float:
        game = self.game_time_at(wall_time)
        return input_time(game if game is not None else 0.0, self.options.offsets)

    def _game_step(self, heard_stream_s: float, now: float) -> None:
        from companion.game.players import feed

        if self.engine is None:
            return
        game = heard_time(self.clock.chart_time(heard_stream_s), self.options.offsets)
        if self._last_game_time is not None and game < self._last_game_time:
            game = self._last_game_time  # the clock's small corrections never go back in time
        self._last_game_time = game
        if self.options.player == "miss-all":
            self._declare_misses(game)
        for j in feed(self.engine, self.player, game):
            hit = j.result != "miss"
            (self.processor.hit if hit else self.processor.miss)(j.note_index)
            self.log.write({"event": "judgement", "note_t": round(j.note.t, 4),
                            "lane": j.note.lane, "result": "hit" if hit else "miss",
                            "grade": j.result,
                            "error_ms": None if j.error_ms is None else round(j.error_ms, 2),
                            "stream_s": round(now, 4)})

    def _open_recorder(self):
        """The replay file of this chart: the first chart of the run writes ``record_inputs``,
        the n-th ``<stem>-n<suffix>`` beside it."""
        from companion.game.players import InputRecorder

        path = Path(self.options.record_inputs)
        if self._charts_played > 1:
            path = path.with_name(f"{path.stem}-{self._charts_played}{path.suffix}")
        return InputRecorder(path, chart_id=self.chart.id, difficulty=self.difficulty,
                             title=self.chart.meta.title)

    def _finish_engine(self, *, song_ended: bool = True) -> None:
        """Count the engine's results; at a song's end (not a seek back) report them, and
        offer them to the high-score table when a person played the whole song."""
        if self.engine is not None:
            self.totals.add(self.engine)
            if song_ended and self.engine.hits + self.engine.misses:
                # A bot's or a replay's score, or a song stopped half-way, is no record: an
                # autoplay run would hold the top of the table for good.
                ranked = self.options.player == "keyboard" and self.engine.finished
                self._report_result(self.engine.results(), ranked=ranked)
        self.engine = None
        self.player = None
        self._last_game_time = None

    def _report_result(self, results, *, ranked: bool) -> None:
        from companion.game.highscores import HighScoreError, HighScores

        best = False
        if ranked:
            try:
                best = HighScores().submit(self.chart.id, self.difficulty, results,
                                           player=self.options.player)
            except (HighScoreError, OSError) as error:  # a broken table must not end the game
                self.log.write({"event": "warning",
                                "message": f"high scores not saved: {error}"})
                ranked = False
        self.log.write({"event": "result", "chart_id": self.chart.id,
                        "difficulty": self.difficulty, "score": results.score,
                        "accuracy": round(results.accuracy, 4), "ranked": ranked,
                        "best": best})

    def _finish_chart(self) -> None:
        self._finish_engine()
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        self.chart = self.track = self.sync = self.clock = None

    def _publish_snapshot(self) -> None:
        from companion.overlay.state import GameSnapshot, snapshot_from_engine

        wall = time.monotonic()
        if self.engine is None:
            status = "recording" if self.listener and self.listener.recording \
                else ("identifying" if self._quiet_since is None else "waiting")
            self.state_box.publish(GameSnapshot(status=status, wall_time=wall))
            return
        paused = self.clock.status.value == "paused"
        self.state_box.publish(snapshot_from_engine(
            self.engine, status="paused" if paused else "synced",
            game_time=self.game_time_at(wall), wall_time=wall, rate=0.0 if paused else 1.0,
            lanes=self.lanes, beats=self.chart.beats, phrases=self.chart.phrases,
            title=self.chart.meta.title,
            artist=self.chart.meta.artist,
            duration_s=self.chart.meta.duration_s, chart_source=self.chart.meta.source.value))

    # -- running ------------------------------------------------------------------------------
    def run(self) -> SessionTotals:
        """Run until the source ends or :attr:`stop_event` is set; always writes ``end``."""
        try:
            if self.options.speed == "max":
                self._run_inline()
            else:
                self._run_threads()
        finally:
            self._finish()
        return self.totals

    def _run_inline(self) -> None:
        t_cpu = time.thread_time()
        while not self.stop_event.is_set():
            if not self.audio_step():
                self.end_reason = "source ended"
                break
            if self._control_due():
                self.control_step()
        self.control_step()
        self.cpu["audio_s"] += time.thread_time() - t_cpu  # audio and control share the thread
        self._flush_tail()

    def _run_threads(self) -> None:
        # Hand the GIL over within 0.5 ms (default 5 ms): the audio thread must not wait for a
        # control-thread time slice while the output buffer drains.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        if self.listener is None:
            self._start_listener()
        self.listener.warm_up()  # its one-off loading must not stall the audio thread
        # Everything imported so far lives as long as the process: collections need not walk
        # it again (each full walk of numpy & co. is milliseconds on the control thread).
        gc.freeze()
        try:
            self._run_audio_and_control()
        finally:
            sys.setswitchinterval(switch)

    def _run_audio_and_control(self) -> None:
        audio = threading.Thread(target=self._audio_thread, name="loopjam-audio", daemon=True)
        audio.start()
        t_cpu = time.thread_time()
        stalled = False
        try:
            while audio.is_alive() or self._analysed < self._end:
                self._wake.wait(0.05)
                self._wake.clear()
                self.control_step()
                if self.stop_event.is_set():
                    break
                # A device that stops delivering (suspended, unplugged without an error) is
                # reported, not waited on in silence.
                quiet_for = time.monotonic() - self._written[1]
                if quiet_for > self.STALL_S and not stalled:
                    self.log.write({"event": "stalled", "stream_s": round(self._end / self.sr, 3),
                                    "seconds": round(quiet_for, 1)})
                stalled = quiet_for > self.STALL_S
                self._report_xruns()
        finally:
            self.stop_event.set()
            audio.join(timeout=5.0)  # a capture stuck in the driver must not hang the exit
            self.cpu["control_s"] += time.thread_time() - t_cpu

    def _report_xruns(self) -> None:
        """A ``warning`` event when the capture lost samples (overruns) or the output ran dry
        (underruns) since the last one, at most one a second; both keep the clock (the
        source's positions jump, the sink keeps later samples in place)."""
        counts = (self.source.overruns, self.sink.underruns, self._dropped)
        now = time.monotonic()
        if counts == self._xruns or now < self._next_xrun_report:
            return
        self._xruns, self._next_xrun_report = counts, now + 1.0
        overruns, underruns, dropped = counts
        self.log.write({"event": "warning", "kind": "xrun",
                        "message": f"audio glitch: {overruns} capture overruns "
                                   f"({dropped} samples dropped), {underruns} output underruns "
                                   f"so far; the game clock keeps time",
                        "stream_s": round(self._end / self.sr, 3), "overruns": overruns,
                        "underruns": underruns, "dropped_samples": dropped})

    def _audio_thread(self) -> None:
        from companion.audio import AudioError

        self.audio_priority = raise_priority(realtime=True)
        t_cpu = time.thread_time()
        try:
            while not self.stop_event.is_set():
                if not self.audio_step():
                    self.end_reason = "source ended"
                    break
                if self._control_due():
                    self._wake.set()
            if self.end_reason == "source ended":
                self._flush_tail()
        except AudioError as error:  # device lost: say so and stop, never hang
            self.end_reason = f"audio error: {error}"
            self.error = error
        finally:
            self.cpu["audio_s"] += time.thread_time() - t_cpu
            self.stop_event.set()
            self._wake.set()

    def _control_due(self) -> bool:
        """True once per :attr:`CONTROL_EVERY_S` of audio: the control loop runs then, not
        after every block (each run costs a thread switch and Python overhead)."""
        if self._end < self._next_control:
            return False
        self._next_control = self._end + int(self.CONTROL_EVERY_S * self.sr)
        return True

    def _flush_tail(self) -> None:
        """Push the processor's delay line out so the sink gets every input sample."""
        latency = int(self.processor.latency_samples)
        if latency:
            self.sink.write(self.processor.process(np.zeros((latency, self.channels), np.float32)))

    def _finish(self) -> None:
        if self.trace is not None:
            np.save(self.options.trace_path, self.trace[:self.blocks])
        if self.listener is not None:
            for event in self.listener.finish(self.ring):
                self._on_listen(event, self._end / self.sr)
        if self.chart is not None:
            self._finish_chart()
        totals = self.totals
        self.log.write({"event": "end", "score": totals.score,
                        "accuracy": round(totals.accuracy, 4), "hits": totals.hits,
                        "misses": totals.misses, "reason": self.end_reason,
                        "stream_s": round(self._end / self.sr, 3),
                        "cpu_s": {k: round(v, 3) for k, v in self.cpu.items()},
                        "output_latency_samples": self.output_latency_samples,
                        "sink_latency_samples": int(self.sink.latency_samples),
                        "sr": self.sr, "audio_priority": self.audio_priority,
                        "dropped_samples": self._dropped,
                        "overruns": self.source.overruns, "underruns": self.sink.underruns,
                        "max_block_ms": round(self.max_block_s * 1000, 3)})


def raise_priority(*, realtime: bool = False) -> str:
    """Best effort for the calling thread (and the threads it starts later, which inherit it):
    real-time FIFO scheduling when ``realtime``, else nice -10, as PulseAudio gets through rtkit.
    Python threads share one lock (the GIL): a control thread descheduled while holding it stalls
    the audio thread, so the whole live process needs the priority, not just the audio thread.
    Returns what it got: "fifo", "nice-10" or "normal"."""
    import os

    if realtime:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            return "fifo"
        except (AttributeError, OSError):
            pass
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
        return "nice-10"
    except (AttributeError, OSError):
        return "normal"


def _fixed_clock(offset_s: float, now: float):
    """A chart without a sync reference follows the fingerprint offset alone."""
    from companion.sync import ClockMap
    return ClockMap(ref_s=now, offset_s=offset_s)

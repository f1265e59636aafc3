"""``loopjam play``: the whole live path, from a device or a file, with a JSON Lines event log."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

from companion.cli import CommandError
from companion.cli._types import number, server_url

EPILOG = """\
examples:
  loopjam play                                  # what your player plays, overlay and keyboard
  loopjam play --source loopback:LoopJam --sink "Built-in" --difficulty hard
  loopjam play song.ogg --sink out.wav --speed max --player autoplay --no-overlay --log run.jsonl
  loopjam play --source loopback:A --sink B --no-overlay --player miss-all --log live.jsonl

--source  loopback (what the default output plays), loopback:DEVICE (what that output plays),
          an input DEVICE, or an audio FILE (then it is played as if it were captured).
--sink    an output DEVICE, or an audio FILE (the processed stream is written there: .wav as
          float32, .flac, .ogg... as the extension says).
DEVICE is a device id (a PulseAudio sink name...) or any part of its description,
case-insensitive; `loopjam devices` lists them. With a FILE source and a FILE sink the run
is offline but block by block exactly as live; --speed max does not wait for the clock.

--player  keyboard (lane keys in the overlay), autoplay (hits every note), miss-all,
          replay:FILE (a replay recorded earlier with --record-inputs FILE).
--mask-mode  what the note remover takes out of what you hear: drop-missed (the notes you
          miss), hit-only (every note you do not hit) or off (nothing). Default: config
          removal.mask_mode. Best results per chart and difficulty are kept locally
          (highscores.json in LOOPJAM_HOME): the keyboard player's, for songs played to the end.

The log (--log) has one JSON object per line:
  {"event":"identified","chart_id","offset_s","after_s","title","artist","source",...}
      after_s: stream seconds until known; source: where the chart came from (imported-human...)
  {"event":"sync","stream_s","chart_s","status"}               four times a second once synced
  {"event":"judgement","note_t","lane","result":"hit"|"miss","error_ms","grade",...}
  {"event":"result","chart_id","difficulty","score","accuracy","ranked","best"}  a song's end;
      ranked: the keyboard player played it to the end, so it went into the high scores
  {"event":"warning","kind":"xrun","message","overruns","underruns","dropped_samples",...}
      audio glitches (at most one a second): the output keeps its lag through them
  {"event":"warning","kind":"remote","message","stream_s"}   the chart server (--remote) failed
  {"event":"end","score","accuracy","hits","misses","reason","overruns","underruns",...}
Songs no store knows are recorded and charted in the background (the next play has a chart).
Ctrl-C (SIGINT) or SIGTERM stop cleanly: the log is flushed and `end` written.
LOOPJAM_AUDIO_TRACE=FILE.npy saves per-block timings of the audio loop (position, read returned,
processed, written; seconds) for diagnosing dropouts.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "play", help="play along: capture, identify, sync, game, output",
        description="Run the live companion: capture what is playing (or read a file), "
                    "identify the song, lock the chart to it and play the game, sending the "
                    "processed audio to the output.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", metavar="FILE",
                        help="shorthand for --source FILE")
    parser.add_argument("--source", metavar="SRC",
                        help="loopback[:DEVICE], an input DEVICE or an audio FILE "
                             "(default: config audio.source, else loopback)")
    parser.add_argument("--sink", metavar="DEVICE|FILE",
                        help="output device, or an audio file (.wav float32, .flac, .ogg...) "
                             "(default: config audio.sink, else the default output; with "
                             "--speed max: no output)")
    parser.add_argument("--player", help="keyboard | autoplay | miss-all | replay:FILE "
                                         "(default: config game.player)")
    parser.add_argument("--difficulty", choices=("easy", "medium", "hard", "expert"),
                        help="default: config game.difficulty (the hardest the chart has "
                             "when it lacks it)")
    parser.add_argument("--lanes", type=number(int, 4, 7), metavar="4..7",
                        help="the most lanes to play: a chart with more is folded onto them "
                             "(default: config game.lanes)")
    parser.add_argument("--no-overlay", action="store_true", help="no window")
    parser.add_argument("--speed", choices=("realtime", "max"), default=None,
                        help="max: do not wait for the clock (FILE sources only); "
                             "default realtime")
    parser.add_argument("--log", type=Path, metavar="FILE.jsonl", help="write the event log")
    parser.add_argument("--remote", metavar="URL", type=server_url,
                        help="chart server to ask after the local store (default: config "
                             "store.remote_url)")
    parser.add_argument("--latency-ms", type=number(float, 1, 2000), default=40.0,
                        help="output device buffer (default 40 ms)")
    parser.add_argument("--block", type=number(int, 64, 16384), default=1024, metavar="FRAMES",
                        help="capture block size in frames (default 1024, 21 ms at 48 kHz; "
                             "512 halves that delay but costs about a third more CPU: every "
                             "block wakes the audio thread and calls the sound server)")
    # companion.config.MASK_MODES: not imported here, it loads numpy
    parser.add_argument("--mask-mode", choices=("drop-missed", "hit-only", "off"),
                        help="drop-missed: remove the notes you miss; hit-only: every note you "
                             "do not hit; off: remove nothing (default: config removal.mask_mode)")
    parser.add_argument("--record-inputs", type=Path, metavar="FILE",
                        help="write the inputs of the song played to a replay file (play it "
                             "back with --player replay:FILE); a later song in the same run "
                             "goes to FILE-2, FILE-3...")
    parser.add_argument("--no-record", action="store_true",
                        help="do not record and chart songs no store knows")
    parser.set_defaults(func=run)


def _options(args, config):
    from companion.app import LiveOptions

    source = args.source or args.file or config.audio.source or "loopback"
    if args.source and args.file:
        raise CommandError("give the source either as FILE or with --source, not both")
    sink = args.sink if args.sink is not None else (config.audio.sink or None)
    player = args.player or config.game.player
    overlay = not args.no_overlay
    if player == "keyboard" and not overlay:
        raise CommandError("the keyboard player needs the overlay; use --player autoplay, "
                           "miss-all or replay:FILE with --no-overlay")
    from companion.game.players import PlayerSpecError, ReplayError, check_player
    try:  # now, not when the first song is identified
        check_player(player)
    except (PlayerSpecError, ReplayError) as error:
        raise CommandError(f"--player {player}: {error}") from None
    speed = args.speed or "realtime"
    return LiveOptions(source=source, sink=sink, backend=config.audio.backend, player=player,
                       difficulty=args.difficulty or config.game.difficulty,
                       lanes=args.lanes or config.game.lanes, speed=speed,
                       log=args.log, overlay=overlay, block_frames=args.block,
                       offsets=config.offsets, remote_url=args.remote or config.store.remote_url
                       or None, record_unknown=not args.no_record,
                       mask_mode=args.mask_mode or config.removal.mask_mode,
                       record_inputs=args.record_inputs)


def _open_devices(options):
    from companion.audio import AudioError, open_sink, open_source

    is_file_source = not (options.source == "null" or options.source.startswith("loopback"))
    if options.speed == "max" and not is_file_source:
        raise CommandError("--speed max needs a FILE source (a device delivers in real time)")
    try:
        source = open_source(options.source, sr=options.sr, channels=options.channels,
                             block_frames=options.block_frames,
                             realtime=options.speed == "realtime", preferred=options.backend)
    except AudioError as error:
        raise CommandError(f"source {options.source}: {error}") from None
    sink_spec = options.sink
    if is_file_source and sink_spec is not None and os.path.exists(sink_spec) and \
            os.path.samefile(sink_spec, options.source):
        source.close()
        raise CommandError(f"--sink {sink_spec} is the song being played: it would be "
                           "overwritten")
    if sink_spec is None and (is_file_source and options.speed == "max"):
        sink_spec = "null"
    if sink_spec is not None and options.source.startswith("loopback:") and \
            sink_spec == options.source.partition(":")[2]:
        source.close()
        raise CommandError("the sink is the device being recorded: that would feed back")
    try:
        sink = open_sink(sink_spec, sr=source.sr, channels=source.channels,
                         block_frames=options.block_frames,
                         buffer_frames=options.sink_buffer_frames * source.sr // options.sr,
                         preferred=options.backend)
    except AudioError as error:
        source.close()
        raise CommandError(f"sink {sink_spec}: {error}") from None
    return source, sink


def _echo(event: dict) -> None:
    from chart_store.chart import song_name

    kind = event.get("event")
    if kind == "identified":
        print(f"identified: {song_name(event.get('artist') or '', event.get('title') or '')} "
              f"[{event['chart_id'][:12]}] after {event['after_s']:.1f} s", file=sys.stderr)
    elif kind == "lost":
        print("song lost: identifying again", file=sys.stderr)
    elif kind == "warning" and event.get("kind") == "remote":
        print(f"loopjam: {event['message']}", file=sys.stderr)
    elif kind == "stalled":
        print(f"the audio device has delivered nothing for {event['seconds']} s", file=sys.stderr)
    elif kind == "recording":
        print("no chart for this song: recording it to chart it afterwards", file=sys.stderr)
    elif kind == "recorded":
        note = "; charting it in the background" if event["analyzing"] else ""
        print(f"recorded {event['path']}{note}", file=sys.stderr)
    elif kind == "end":
        print(f"score {event['score']}  accuracy {event['accuracy']:.1%}  hits {event['hits']}"
              f"  misses {event['misses']}  ({event['reason']})", file=sys.stderr)


class _StopRequest:
    """SIGINT/SIGTERM as a stop request. Installed first thing, before the slow imports and the
    device set-up, so a signal at any moment ends the run cleanly (``end`` logged, exit 0)
    instead of killing the process half-way through its set-up."""

    def __init__(self):
        self.event = threading.Event()
        self.reason: str | None = None
        self.session = None  # set once the session exists
        self.control = None  # the overlay's, when it has one

    def __call__(self, signum, frame) -> None:
        self.reason = f"signal {signal.Signals(signum).name}"
        if self.session is not None:
            self.session.end_reason = self.reason
        self.event.set()
        if self.control is not None:
            self.control.stop.set()

    @contextlib.contextmanager
    def installed(self):
        previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def run(args) -> int:
    with _StopRequest().installed() as stop:
        return _run(args, stop)


def _run(args, stop: _StopRequest) -> int:
    from companion.app import EventLog, raise_priority
    from companion.cli._config import user_config

    config = user_config()
    options = _options(args, config)
    options.sink_buffer_frames = int(round(args.latency_ms / 1000 * options.sr))
    if os.environ.get("LOOPJAM_AUDIO_TRACE"):
        options.trace_path = Path(os.environ["LOOPJAM_AUDIO_TRACE"])
    overlay = overlay_settings = None
    if options.overlay:
        try:
            from companion.overlay import window as overlay  # noqa: F811 (pyglet loads here)
        except Exception as error:  # no pyglet, or (it opens a hidden window on import) no
            # display: each platform raises its own error
            unplayable = _no_overlay(error, options.player)
            if unplayable is not None:
                raise unplayable from None
            overlay = None
        else:
            overlay_settings = overlay.overlay_settings(config, player=options.player)
    if options.speed == "realtime":
        raise_priority()  # before any thread starts, so they all inherit it
    with contextlib.ExitStack() as stack:
        try:  # before the sink: opening a sink FILE truncates it
            log = EventLog(options.log, echo=_echo)
        except OSError as error:
            raise CommandError(f"cannot write the log: {error}") from None
        stack.callback(log.close)
        router = _routing(options)
        source, sink = _open_devices(options)
        stack.callback(source.close)
        stack.callback(sink.close)
        if router is not None:
            from companion.routing import RoutingError

            # Only now, with the streams open, does the pass-through stop (it was a 441 ms
            # silence when it stopped first); and it resumes before they close.
            try:
                stack.enter_context(router.companion_running())
            except RoutingError as error:
                raise CommandError(str(error)) from None
        return _play(options, overlay, overlay_settings, source, sink, log, stop)


def _no_overlay(error: Exception, player: str) -> CommandError | None:
    """The overlay cannot be shown: the keyboard player cannot play without it (every note
    would be missed and taken out), so that is the error to raise; a bot plays on, said on
    stderr (None)."""
    what = f"no overlay ({type(error).__name__}: {error})"
    if player == "keyboard":
        return CommandError(f"{what}; the keyboard player needs it (--player autoplay plays "
                            "without)")
    print(f"loopjam: {what}; playing without it", file=sys.stderr)
    return None


def _routing(options):
    """With LoopJam's routing set up (Linux), record the LoopJam device and play to the output
    it replaced; the router, whose pass-through the companion then stands in for (None: no
    routing to hand over)."""
    from companion.routing import NoSoundServer, RoutingError, platform_router
    from companion.routing.linux import SINK_NAME

    if options.source not in ("loopback", f"loopback:{SINK_NAME}"):
        return None
    try:
        router = platform_router()
        state = router.state()
        if state is None:
            router.default_sink()  # is there a sound server at all?
    except NoSoundServer as error:  # nothing to capture: say that, not "it would feed back"
        raise CommandError(str(error)) from None
    except RoutingError:
        state = None
    if state is None:
        if options.source == "loopback" and options.sink is None:
            raise CommandError("recording the default output and playing to it would feed "
                               "back: run `loopjam setup-audio` first, or give "
                               "--source loopback:DEVICE and a different --sink")
        return None
    options.source = f"loopback:{SINK_NAME}"
    if options.sink is None:
        options.sink = state.previous_default
    return router


def _play(options, overlay, overlay_settings, source, sink, log, stop) -> int:
    from companion.app import LiveSession

    box = keys = control = unplayable = None
    if overlay is not None:
        import queue

        from companion.overlay.state import StateBox
        box, keys, control = StateBox(), queue.SimpleQueue(), overlay.OverlayControl()
    session = LiveSession(options, source=source, sink=sink, log=log, state_box=box,
                          key_queue=keys, stop_event=stop.event)
    if stop.reason is not None:  # a signal during the set-up: end at once, cleanly
        session.end_reason = stop.reason
    stop.session, stop.control = session, control
    if control is not None and stop.event.is_set():
        control.stop.set()
    if overlay is None:
        session.run()
    else:
        def run_then_close():  # however the session ends (the source, a signal, an error)
            try:
                session.run()
            finally:
                control.stop.set()

        worker = threading.Thread(target=run_then_close, name="loopjam-session")
        worker.start()
        try:
            overlay.run_overlay(box.get, key_queue=keys, control=control, **overlay_settings)
            session.stop_event.set()  # the window was closed
        except overlay.OverlayUnavailable as error:
            unplayable = _no_overlay(error.__cause__ or error, options.player)
            if unplayable is not None:
                session.end_reason = "no overlay"
                session.stop_event.set()
        except BaseException:  # a bug while drawing: end the session cleanly, then report it
            session.stop_event.set()
            worker.join()
            raise
        while worker.is_alive():
            worker.join(0.2)
    if unplayable is not None:
        raise unplayable
    if session.error is not None:
        raise CommandError(str(session.error))
    return 0

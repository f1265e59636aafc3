"""``loopjam calibrate``: show or set the audio/video/input offsets, or derive one from taps."""
from __future__ import annotations

import argparse
import json

from companion.cli import CommandError, emit_json

EPILOG = """\
examples:
  loopjam calibrate                         show the current offsets
  loopjam calibrate --tap audio             tap SPACE on each click: measures the audio offset
  loopjam calibrate --tap video             tap SPACE on each flash: measures the video offset
  loopjam calibrate --tap audio --sink "USB Headset"
  loopjam calibrate --audio-ms 35 --video-ms 12
  loopjam calibrate --from-taps taps.json --kind audio

Offsets are milliseconds, positive when sound/picture/key arrives later than the game clock
says (see companion.game.calibration). --tap opens a small window: the audio test plays
clicks through the output device (and reports the latency the audio backend states; the
offset measured is the rest: speakers, Bluetooth, you), the video test flashes the window
(display lag). Each stores the median tap error after dropping outliers. --from-taps reads {"taps": [s...], "beats": [s...]}
(a tap test: the player tapped along to clicks or flashes at the beat times) and stores the
median tap error, after dropping outliers, as the audio or video offset.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="show or set latency offsets",
        description="Show or set LoopJam's audio, video and input offsets.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    for kind in ("audio", "video", "input"):
        parser.add_argument(f"--{kind}-ms", type=float, metavar="MS", help=f"set the {kind} offset")
    parser.add_argument("--tap", choices=("audio", "video"),
                        help="run the tap-along test in a window and store the result")
    parser.add_argument("--sink", metavar="DEVICE",
                        help="output device for the audio test (default: config audio.sink)")
    parser.add_argument("--from-taps", metavar="FILE", help="JSON with taps and beats (seconds)")
    parser.add_argument("--kind", choices=("audio", "video"), default="audio",
                        help="which offset --from-taps measures (default audio)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args) -> int:
    from companion.config import ConfigError, load_config, save_config
    from companion.game.calibration import CalibrationError, offset_from_taps

    try:
        cfg = load_config()
        measured = None
        latency_ms = None
        if args.tap:
            try:
                from companion.overlay.tap_test import run_tap_test
                result = run_tap_test(kind=args.tap, sink=args.sink or cfg.audio.sink or None,
                                      backend=cfg.audio.backend)
            except Exception as error:  # no display / OpenGL / audio device: say which
                raise CommandError(f"the tap test cannot run here ({type(error).__name__}: "
                                   f"{error})") from None
            if result.calibration is None:
                raise CommandError(f"tap test: {result.error}; try again, tapping on the beat")
            measured, latency_ms = result.calibration, result.latency_ms
            args.kind = args.tap
            cfg = cfg.with_value(f"offsets.{args.kind}_ms", measured.offset_ms)
        elif args.from_taps:
            try:
                with open(args.from_taps, encoding="utf-8") as file:
                    data = json.load(file)
                if not (isinstance(data, dict) and {"taps", "beats"} <= set(data)):
                    raise ValueError('expected a JSON object with "taps" and "beats" (seconds)')
                measured = offset_from_taps(taps=data["taps"], beats=data["beats"])
            except (OSError, ValueError, TypeError) as error:
                raise CommandError(f"{args.from_taps}: {error}") from None
            cfg = cfg.with_value(f"offsets.{args.kind}_ms", measured.offset_ms)
        for kind in ("audio", "video", "input"):
            value = getattr(args, f"{kind}_ms")
            if value is not None:
                cfg = cfg.with_value(f"offsets.{kind}_ms", value)
        if measured is not None or any(getattr(args, f"{k}_ms") is not None
                                       for k in ("audio", "video", "input")):
            save_config(cfg)
    except (ConfigError, CalibrationError) as error:
        raise CommandError(str(error)) from None
    offsets = cfg.to_dict()["offsets"]
    if args.json:
        emit_json({"offsets": offsets, "measured": None if measured is None else {
            "kind": args.kind, "offset_ms": measured.offset_ms, "spread_ms": measured.spread_ms,
            "used": measured.used, "outliers": measured.outliers},
            "backend_latency_ms": latency_ms})
    else:
        if latency_ms is not None:
            print(f"audio backend output latency {latency_ms:.1f} ms (already accounted for)")
        if measured is not None:
            print(f"measured {args.kind} offset {measured.offset_ms:+.1f} ms "
                  f"(spread {measured.spread_ms:.1f} ms, {measured.used} taps, "
                  f"{measured.outliers} dropped)")
        print("  ".join(f"{k} {v:+.1f}" for k, v in offsets.items()))
    return 0

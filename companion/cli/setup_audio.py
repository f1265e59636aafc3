"""``loopjam setup-audio``: route the player's audio through LoopJam (and undo it)."""
from __future__ import annotations

import argparse

from companion.cli import CommandError, emit_json

EPILOG = """\
examples:
  loopjam setup-audio                 # create the LoopJam device and route playing audio to it
  loopjam setup-audio --move spotify  # also move Spotify's running stream (any part of its name)
  loopjam setup-audio --remove        # restore the previous output and remove the device

Linux (PulseAudio or PipeWire): a virtual output "LoopJam" becomes the default output, so players
send their audio there; streams already playing are moved to it. While `loopjam play` is not
running, LoopJam passes the audio straight on to your previous output, so you always hear it;
while it runs, it plays the processed audio there instead. --remove puts everything back, and so
does the next set-up or play after a crash.
Windows: install VB-CABLE and choose "CABLE Input" as the player's output (installers/windows).
macOS: install BlackHole 2ch and make a Multi-Output Device (installers/macos).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "setup-audio", help="route the player's audio through LoopJam (or undo it)",
        description="Create the LoopJam virtual output and route playing audio through it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--remove", action="store_true", help="undo the set-up")
    parser.add_argument("--move", metavar="APP", action="append", default=[],
                        help="move this application's playing stream to LoopJam (repeatable)")
    parser.add_argument("--no-move", action="store_true",
                        help="do not move the streams already playing")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args) -> int:
    from companion.audio.base import DeviceNotFound
    from companion.routing import RoutingError, platform_router

    try:
        router = platform_router()
        if args.remove:
            removed = router.remove()
            if args.json:
                emit_json({"removed": removed})
            else:
                print("LoopJam routing removed" if removed else "LoopJam routing was not set up")
            return 0
        state = router.setup(move_streams=not args.no_move and not args.move)
        moved = [router.move_stream(query).name for query in args.move]
    except (RoutingError, DeviceNotFound) as error:
        raise CommandError(str(error)) from None
    if args.json:
        emit_json({"sink": state.sink, "previous_default": state.previous_default,
                   "moved": sorted(set(state.moved)), "moved_apps": moved})
    else:
        print(f"LoopJam is the default output; audio goes on to {state.previous_default}.")
        for name in moved:
            print(f"moved {name} to LoopJam")
        print("Run `loopjam play` to play along; `loopjam setup-audio --remove` to undo.")
    return 0

"""``loopjam tray`` (and bare ``loopjam``): the tray companion."""
from __future__ import annotations

import argparse

from companion.cli import CommandError

EPILOG = """\
examples:
  loopjam                 same as 'loopjam tray'
  loopjam tray
  loopjam tray --no-start show the icon without starting the engine

The tray icon starts the live engine ('loopjam play' with the devices, player and difficulty
from 'loopjam config') and shows what it hears: song, chart source, sync state. Its menu
pauses and resumes, changes difficulty and lanes, shows or hides the overlay, calibrates,
analyzes a music folder, imports a folder of Clone Hero / Frets on Fire songs, opens the
store folder and the settings file, and quits.
Needs a desktop session (a display); on Linux without a tray area the icon still runs.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tray", help="the tray companion (default when no command is given)",
        description="Run LoopJam's tray icon, which starts and controls the live engine.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-start", action="store_true",
                        help="do not start the engine until Start is chosen")
    parser.set_defaults(func=run)


def run(args) -> int:
    from companion.cli._config import user_config
    from companion.tray import run_tray

    config = user_config()
    try:
        run_tray(config=config, autostart=not args.no_start)
    except Exception as error:  # pystray raises backend-specific errors without a display
        if type(error).__name__ in ("DisplayNameError", "DisplayConnectionError"):
            raise CommandError("no desktop session to show a tray icon in "
                               "(DISPLAY is not set); use 'loopjam play' instead") from None
        raise
    return 0

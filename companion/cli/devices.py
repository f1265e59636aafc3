"""``loopjam devices``: the audio devices LoopJam can record from and play to."""
from __future__ import annotations

import argparse

from companion.cli import emit_json

EPILOG = """\
examples:
  loopjam devices
  loopjam devices --json
      one line per device: {"id","name","kind","backend","channels","default"}

Use a device's id, or any part of its name (case-insensitive), with `loopjam play --source
loopback:DEVICE` (record what an output plays) or `--sink DEVICE`. Backends are tried in order:
soundcard (the system sound server, loopback capture), pyaudio, then a silent null device.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "devices", help="list audio devices",
        description="List the input and output devices of every available audio backend.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="one JSON object per device")
    parser.set_defaults(func=run)


def run(args) -> int:
    from companion.audio import list_devices

    devices = list_devices()
    if args.json:
        for device in devices:
            emit_json(device.to_json())
        return 0
    for device in devices:
        mark = "*" if device.is_default else " "
        print(f"{mark} {device.kind:6} {device.backend:9} {device.id}  ({device.name})")
    return 0

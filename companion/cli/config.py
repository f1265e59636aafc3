"""``loopjam config show|get|set|path``: read and edit the settings file."""
from __future__ import annotations

import argparse

from companion.cli import CommandError, emit_json

EPILOG = """\
examples:
  loopjam config show                      the whole config (defaults filled in)
  loopjam config show --json
  loopjam config get game.lanes
  loopjam config set game.lanes 6
  loopjam config set game.keys a,s,d,j,k,l
  loopjam config set offsets.audio_ms -35
  loopjam config set store.remote_url https://charts.example.org
  loopjam config set overlay.opacity 0.8
  loopjam config path

Sections: audio (source, sink, backend), game (difficulty, lanes, player, keys),
offsets (audio_ms, video_ms, input_ms), store (remote_url, token),
removal (mask_mode: drop-missed | hit-only | off), overlay (width, height, x, y,
scroll_speed, opacity, lane_colors, ...). A bad value is refused with the key and the reason;
the file is left unchanged. The file is config.toml in LOOPJAM_HOME.

Who reads what: play and the tray read audio.*, game.*, offsets.*, removal.* and overlay.*;
game.lanes is the most lanes played (a chart with more is folded onto them) and the lanes of
charts analyze and the live recorder make; store push / pull read store.remote_url and
store.token; audio.backend (auto | soundcard | pyaudio | null) yields to LOOPJAM_AUDIO.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "config", help="show or change settings",
        description="Show or change LoopJam's settings (config.toml in LOOPJAM_HOME).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the whole config")
    get = sub.add_parser("get", help="print one value")
    get.add_argument("key", metavar="KEY", help="section.name, e.g. game.lanes")
    set_ = sub.add_parser("set", help="change one value")
    set_.add_argument("key", metavar="KEY", help="section.name, e.g. game.lanes")
    set_.add_argument("value", metavar="VALUE", help="new value (lists comma-separated)")
    path = sub.add_parser("path", help="print where the config file is")
    for p in (show, get, set_, path):
        p.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args) -> int:
    from companion.config import ConfigError, config_path, load_config, save_config

    try:
        cfg = load_config()
        if args.action == "show":
            shown = cfg.to_dict()
            if shown["store"]["token"]:  # a streamer shows their settings: not the secret
                shown["store"]["token"] = "(hidden: loopjam config get store.token)"
            if args.json:
                emit_json(shown)
            else:
                import tomli_w
                print(tomli_w.dumps(shown), end="")
        elif args.action == "get":
            value = cfg.get(args.key)
            value = list(value) if isinstance(value, tuple) else value
            if args.json:
                emit_json({"key": args.key, "value": value})
            else:
                print(value)
        elif args.action == "set":
            cfg = cfg.with_value(args.key, args.value)
            path = save_config(cfg)
            value = cfg.get(args.key)
            if args.json:
                emit_json({"key": args.key, "value": list(value) if isinstance(value, tuple)
                           else value, "path": str(path)})
            else:
                shown = ",".join(value) if isinstance(value, tuple) else repr(value)
                if args.key == "store.token" and value:
                    shown = "(hidden)"
                print(f"{args.key} = {shown}  ({path})")
        else:
            if args.json:
                emit_json({"path": str(config_path())})
            else:
                print(config_path())
    except ConfigError as error:
        raise CommandError(str(error)) from None
    return 0

"""The ``loopjam`` command line.

Each command lives in its own module under this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` to a function ``(args) -> int``; every module here that
has ``register`` is a command (modules starting with ``_`` are helpers). Commands raise
:class:`CommandError` for failures the user can act on; :func:`main` prints them as one line
and exits 1. argparse usage errors exit 2. Nothing heavy is imported until a command runs.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import signal
import sys



class CommandError(Exception):
    """A failure to report as one line (no traceback), exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default prints usage; keep it, exit 2 as it does
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def emit_json(obj) -> None:
    """Print one JSON object on one line (the ``--json`` contract) and flush.

    UTF-8 as it is, unless a string holds a byte that is not (a file name from another
    system's encoding, decoded by Python with surrogates): then escaped, so the line is
    always valid JSON in valid UTF-8."""
    line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj, separators=(",", ":"))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="loopjam",
        description="LoopJam turns the music you are already playing into a rhythm game.",
        epilog="Environment: LOOPJAM_HOME holds the config, the local chart store and caches "
               "(default: the platform's user data folder). "
               "Run 'loopjam COMMAND --help' for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def _innermost(parser: argparse.ArgumentParser, args) -> argparse.ArgumentParser:
    """The parser of the (sub)command ``args`` were parsed for (``store remove``...)."""
    for dest in ("command", "action"):
        name = getattr(args, dest, None)
        actions = parser._subparsers._group_actions if parser._subparsers else []
        choices = actions[0].choices if actions else {}
        if name not in choices:
            break
        parser = choices[name]
    return parser


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # behave like a Unix tool in pipelines (| head)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints as its bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # said by the (sub)command's parser, with its usage, not the top-level one's
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    if not getattr(args, "func", None):
        if args.command is None and "tray" in parser._subparsers._group_actions[0].choices:
            args = parser.parse_args(["tray"])
        else:
            parser.print_help()
            return 2
    from chart_store.db import DatabaseError

    try:
        return int(args.func(args) or 0)
    except CommandError as error:
        print(f"loopjam: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (| head where there is no SIGPIPE)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (OSError, DatabaseError) as error:
        # What the machine refused (a LOOPJAM_HOME that is a file, a full disk, a damaged
        # store): the user can act on it, so one line, as for a CommandError.
        print(f"loopjam: {args.command}: {_reason(error)}", file=sys.stderr)
        return 1


def _reason(error: Exception) -> str:
    """``error`` in one line: "what: file" for an OSError that names its file."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error)


if __name__ == "__main__":
    sys.exit(main())

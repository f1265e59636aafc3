"""``loopjam serve``: run the shared chart server."""
from __future__ import annotations

import argparse
import json
import os

from companion.cli import CommandError
from companion.cli._types import number

EPILOG = """\
examples:
  loopjam serve                                        # SQLite in LOOPJAM_HOME, port 8750
  loopjam serve --db sqlite:////srv/charts.sqlite3 --host 0.0.0.0 --workers 4
  loopjam serve --db postgresql://loopjam@localhost/loopjam --workers 8
  loopjam serve --db sqlite:////srv/charts.sqlite3 --issue-token alice

SQLite URLs are as SQLAlchemy writes them: sqlite:///charts.sqlite3 is relative to the current
folder, sqlite:////srv/charts.sqlite3 (four slashes) is /srv/charts.sqlite3.

Tokens: reads (search, fetch, identify) are open; uploads need a bearer token. Create one with
--issue-token NAME (prints the token once and exits; only its hash is stored). Give it to the
uploader: `loopjam store push --remote URL --token TOKEN`. A token can replace or delete only
the charts it uploaded.

The API is described by the OpenAPI document at http://HOST:PORT/openapi.json (docs at /docs).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the shared chart server",
        description="Serve charts by fingerprint over HTTP (FastAPI + uvicorn), backed by "
                    "SQLite (default) or PostgreSQL.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", metavar="URL",
                        help="sqlite:///PATH (sqlite:////ABSOLUTE/PATH) or "
                             "postgresql://USER@HOST/DB "
                             "(default: sqlite:///LOOPJAM_HOME/server/charts.sqlite3)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                        "%(default)s)")
    parser.add_argument("--port", type=number(int, 1, 65535), default=8750,
                        help="port (default %(default)s)")
    parser.add_argument("--workers", type=number(int, 1), default=1,
                        help="worker processes (default 1)")
    parser.add_argument("--max-upload-mb", type=number(float, 0.001), default=16.0,
                        help="largest chart upload in MiB (default %(default)s)")
    parser.add_argument("--writes-per-s", type=number(float, 0.001), default=2.0,
                        help="uploads/deletes per second per token, sustained (default "
                             "%(default)s; bursts of 20)")
    parser.add_argument("--issue-token", metavar="NAME",
                        help="create an upload token called NAME, print it and exit")
    parser.set_defaults(func=run)


def run(args) -> int:
    from chart_store.db import DatabaseError
    from chart_store.home import loopjam_home

    url = args.db or f"sqlite:///{loopjam_home() / 'server' / 'charts.sqlite3'}"
    if args.issue_token is not None:
        if not args.issue_token.strip():
            raise CommandError("--issue-token needs a name (who the token is for)")
        from chart_store.server.storage import ServerStore
        try:
            token = ServerStore(url).issue_token(args.issue_token)
        except (DatabaseError, ValueError) as error:
            raise CommandError(str(error)) from None
        print(token)
        return 0
    try:
        import uvicorn
        import fastapi  # noqa: F401  (checked here to fail with a clear message)
    except ImportError as error:
        raise CommandError(f"the server needs the 'server' extra ({error.name} is missing): "
                           "pip install 'loopjam[server]'") from None
    limits = {"max_upload_bytes": int(args.max_upload_mb * 2**20),
              "writes_per_s": args.writes_per_s}
    os.environ["LOOPJAM_SERVER_DB"] = url
    os.environ["LOOPJAM_SERVER_LIMITS"] = json.dumps(limits)
    try:  # migrate and check the database once, before workers start
        from chart_store.server.storage import ServerStore
        ServerStore(url)
    except DatabaseError as error:
        raise CommandError(str(error)) from None
    _check_port(args.host, args.port)
    uvicorn.run("chart_store.server.app:app_from_env", factory=True, host=args.host,
                port=args.port, workers=args.workers, log_level="warning",
                timeout_graceful_shutdown=5)
    return 0


def _check_port(host: str, port: int) -> None:
    """A port another program holds is a one-line error here (uvicorn logs it and exits 3)."""
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise CommandError(f"cannot listen on {host}:{port}: {reason}") from None

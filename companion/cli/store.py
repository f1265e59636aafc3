"""``loopjam store``: the local chart store (list, remove, stats) and a chart server (push, pull)."""
from __future__ import annotations

import argparse
import os
import sys

from companion.cli import CommandError, emit_json
from companion.cli._types import server_url

EPILOG = """\
examples:
  loopjam store list                      # every chart: id, artist - title, source
  loopjam store list queen --json         # charts whose title/artist contains "queen"
  loopjam store stats
  loopjam store remove 3fa2c1             # a chart id or prefix; its local stems go too
  loopjam store push --remote http://charts.example:8750 --token TOKEN
  loopjam store pull --remote http://charts.example:8750 --query queen

push uploads local charts the server does not have (a token is needed: ask the server's
admin, who creates one with `loopjam serve --issue-token NAME`); pull downloads the server's
charts (all, or those matching --query / the given ids) into the local store, so they are
found offline. When --remote / --token are not given, LOOPJAM_REMOTE and LOOPJAM_TOKEN are
used, else the config's store.remote_url and store.token (`loopjam config set store.token ...`).
The store lives in LOOPJAM_HOME/store.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "store", help="manage the local chart store; push/pull charts to a server",
        description="List, remove and count the charts in the local store, and exchange "
                    "them with a chart server.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = sub.add_parser("list", help="list stored charts")
    p.add_argument("query", nargs="?", default="", help="part of a title, artist or id")
    p.add_argument("--json", action="store_true", help="one JSON object per chart")
    p.set_defaults(func=run_list)

    p = sub.add_parser("remove", help="delete charts from the local store")
    p.add_argument("chart_ids", nargs="+", metavar="CHART", help="chart id or unique prefix")
    p.set_defaults(func=run_remove)

    p = sub.add_parser("stats", help="chart counts and sizes")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_stats)

    for name, helptext in (("push", "upload local charts to a chart server"),
                           ("pull", "download charts from a chart server")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("chart_ids", nargs="*", metavar="CHART", help="only these charts")
        p.add_argument("--remote", metavar="URL", type=server_url,
                       default=os.environ.get("LOOPJAM_REMOTE"),
                       help="chart server URL (default: $LOOPJAM_REMOTE, else config "
                            "store.remote_url)")
        p.add_argument("--token", default=os.environ.get("LOOPJAM_TOKEN"),
                       help="upload token (default: $LOOPJAM_TOKEN, else config store.token)")
        p.add_argument("--json", action="store_true", help="one JSON line per chart")
        if name == "pull":
            p.add_argument("--query", default="", help="only charts whose title/artist "
                                                       "contains this")
        p.set_defaults(func=run_push if name == "push" else run_pull)


def _store():
    from chart_store.local import LocalStore
    return LocalStore()


def _resolve(store, prefix: str) -> str:
    from chart_store.local import ChartNotFound
    try:
        return store.resolve(prefix)
    except ChartNotFound as error:
        raise CommandError(error.args[0]) from None


def run_list(args) -> int:
    from chart_store.chart import song_name

    for info in _store().list(args.query):
        if args.json:
            emit_json(info.to_json())
        else:
            print(f"{info.chart_id}  {song_name(info.artist, info.title)}  [{info.source}]  "
                  f"{info.duration_s:.0f}s")
    return 0


def run_remove(args) -> int:
    from chart_store.stems import StemStore

    store, stems = _store(), StemStore()
    for chart_id in [_resolve(store, p) for p in args.chart_ids]:
        store.remove(chart_id)
        # Its stem audio (imported or separated) is only useful with the chart.
        stems.remove(chart_id)
        print(f"removed {chart_id}")
    return 0


def run_stats(args) -> int:
    from chart_store.stems import StemStore

    stats = _store().stats()
    stem_bytes = StemStore().disk_bytes()   # kept with their charts (store remove takes both)
    if args.json:
        emit_json({**stats.to_json(), "stem_bytes": stem_bytes})
        return 0
    print(f"store:        {stats.root}")
    print(f"charts:       {stats.charts}"
          + "".join(f"  {k}={v}" for k, v in sorted(stats.by_source.items())))
    print(f"fingerprints: {stats.fingerprint_items} items")
    print(f"source files: {stats.source_hashes} remembered (analyze skips them)")
    print(f"disk:         {(stats.database_bytes + stats.chart_bytes + stem_bytes) / 2**20:.1f} "
          f"MiB (stems {stem_bytes / 2**20:.1f} MiB)")
    return 0


def _remote(args):
    from chart_store.client import RemoteError, RemoteStore
    from companion.cli._config import user_config

    if not (args.remote and args.token):
        config = user_config().store
        args.remote = args.remote or config.remote_url or None
        args.token = args.token or config.token or None
    if not args.remote:
        raise CommandError("give the chart server with --remote URL (or set LOOPJAM_REMOTE, or "
                           "config store.remote_url)")
    try:
        return RemoteStore(args.remote, args.token)
    except RemoteError as error:
        raise CommandError(str(error)) from None


def _progress(total: int, what: str, quiet: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc=what, unit="chart", file=sys.stderr,
                disable=quiet or total < 2)


def run_push(args) -> int:
    from chart_store.client import RemoteError

    store, remote = _store(), _remote(args)
    if not args.token:
        raise CommandError("pushing needs an upload token: --token TOKEN (or LOOPJAM_TOKEN, or "
                           "config store.token)")
    ids = [_resolve(store, p) for p in args.chart_ids] or [c.chart_id for c in store.list()]
    pushed = 0
    with _progress(len(ids), "push", args.json) as bar:
        for chart_id in ids:
            try:
                upload = remote.put(store.get(chart_id))
            except RemoteError as error:
                raise CommandError(f"push stopped at {chart_id}: {error}") from None
            pushed += upload.created
            if args.json:
                emit_json({"chart_id": upload.chart_id,
                           "action": "pushed" if upload.created else "already there"})
            bar.update()
    if not args.json:
        print(f"pushed {pushed} new chart(s) to {remote.url} ({len(ids) - pushed} already there)")
    return 0


def run_pull(args) -> int:
    from chart_store.client import RemoteError
    from chart_store.local import ChartNotFound

    store, remote = _store(), _remote(args)
    try:
        if args.chart_ids:
            ids = list(args.chart_ids)
        else:
            ids, offset = [], 0
            while True:
                page = remote.list(args.query, limit=500, offset=offset)
                ids += [c.chart_id for c in page]
                offset += len(page)
                if len(page) < 500:
                    break
        fetched = 0
        with _progress(len(ids), "pull", args.json) as bar:
            for chart_id in ids:
                here = chart_id in store
                if not here:
                    store.put(remote.get(chart_id), origin=remote.url)
                    fetched += 1
                if args.json:
                    emit_json({"chart_id": chart_id, "action": "already here" if here
                               else "pulled"})
                bar.update()
    except (RemoteError, ChartNotFound) as error:
        raise CommandError(str(error)) from None
    if not args.json:
        print(f"pulled {fetched} new chart(s) from {remote.url} ({len(ids) - fetched} already "
              "here)")
    return 0

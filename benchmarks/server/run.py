"""Chart server throughput and latency on loopback: SQLite vs PostgreSQL, 10,000 charts.

Each database gets ``--charts`` charts whose fingerprints are real music (the benchmark
recordings' libchromaprint items plus pitch/tempo variants of them, see
``benchmarks.identify.variants``) and a real ``loopjam serve --workers N`` on 127.0.0.1. Then,
for ``--seconds`` each, :mod:`benchmarks.server.load` (a light asyncio generator in a process
of its own, ``--clients`` keep-alive connections) sends:

- identify: POST /identify with the items of a 5 s excerpt of an indexed recording, the body
  :class:`~chart_store.client.RemoteStore` sends;
- fetch: GET /charts/{id} of a random chart;

first in a closed loop (each connection sends again as soon as it is answered: the most the box
can do), then in an open loop at ``--rate`` requests/s (latency counted from each request's
scheduled time: what clients see at that load). A last run identifies at ``--rate`` while a new
chart is uploaded every ``--upload-every`` seconds, as on a live server (each upload changes
the fingerprint index every worker searches).

Reported per database and run: requests/s, latency p50/p99/max, errors, the generator's CPU
(% of one core) and the server's CPU (% and ms per request, all its processes). Generator and
server share the machine's cores (the figures are for everything on one box; ``loadavg_at_start``
says how busy the box was already).

    scripts/services.sh   # PostgreSQL
    .venv/bin/python -m benchmarks.server.run [--charts 10000] [--workers 2] [--rate 300]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from chart_store.chart import Chart, ChartMeta, Fingerprint, Note
from benchmarks.server.load import http_request, process_tree_cpu_s, run_load
from chart_store.server.storage import ServerStore


def make_charts(n: int, rng: np.random.Generator) -> list[Chart]:
    """``n`` small charts whose fingerprints are real music or variants of it."""
    from benchmarks.identify.common import distractors, unique
    from benchmarks.identify.scale import raw_chroma
    from benchmarks.identify.variants import variants

    recs = unique(distractors())
    fingerprints = [rec.items() for rec in recs]
    tempi = np.geomspace(0.8, 1.25, 12)
    while len(fingerprints) < n:
        for rec in recs:
            raw = raw_chroma(rec)
            for tempo in tempi:
                fingerprints.extend(variants(raw, semitones=range(1, 12), tempo=float(tempo)))
            if len(fingerprints) >= n:
                break
    charts = []
    for i, items in enumerate(fingerprints[:n]):
        times = np.sort(rng.uniform(0, len(items) * 0.1238, 300))
        charts.append(Chart(ChartMeta(f"Track {i}", f"Artist {i % 97}",
                                      duration_s=len(items) * 0.1238),
                            {"expert": [Note(float(t), lane=int(i % 5)) for t in times]},
                            fingerprint=Fingerprint(items)))
    return charts


def seed(db_url: str, charts: list[Chart]) -> tuple[float, str]:
    """Store ``charts`` in the server database; returns the seconds taken and an upload token."""
    store = ServerStore(db_url)
    token = store.issue_token(f"bench-{time.time_ns()}")
    owner = store.token_id(token)
    t = time.perf_counter()
    for start in range(0, len(charts), 200):  # one commit per 200 uploads
        with store.db.transaction():
            for chart in charts[start:start + 200]:
                store.upload(chart, owner=owner)
    store.db.close()
    return time.perf_counter() - t, token


def upload_during(url: str, token: str, charts: list[Chart], *, every_s: float,
                  seconds: float) -> threading.Thread:
    """Upload one of ``charts`` every ``every_s`` seconds for ``seconds`` in a thread (what a
    live server sees while it answers identifications)."""
    import requests

    from chart_store.chartfile import dumps

    def run():
        end = time.perf_counter() + seconds
        for chart in charts:
            time.sleep(every_s)
            if time.perf_counter() > end:
                break
            requests.post(url + "/charts", data=dumps(chart), timeout=60,
                          headers={"Authorization": f"Bearer {token}"}).raise_for_status()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait_idle(pid: int, *, timeout_s: float = 120.0) -> float:
    """Wait until the server's processes are idle (every worker has built its index);
    returns the seconds waited."""
    t = time.perf_counter()
    before = process_tree_cpu_s(pid)
    while time.perf_counter() - t < timeout_s:
        time.sleep(1.0)
        now = process_tree_cpu_s(pid)
        if now - before < 0.05:
            break
        before = now
    return time.perf_counter() - t


def measure(server_pid: int, url: str, requests: list[bytes], *, clients: int, seconds: float,
            rate: float | None) -> dict:
    """One load run plus the server's CPU time per request over it."""
    cpu = process_tree_cpu_s(server_pid)
    t = time.perf_counter()
    result = run_load(url, requests, clients=clients, seconds=seconds, rate=rate).to_json()
    cpu = process_tree_cpu_s(server_pid) - cpu
    wall = time.perf_counter() - t
    result["server_cpu_pct"] = round(100 * cpu / wall, 1)
    result["server_cpu_ms_per_request"] = (round(1e3 * cpu / result["requests"], 2)
                                           if result["requests"] else None)
    return result


def identify_body(items: np.ndarray) -> bytes:
    """The body :meth:`chart_store.client.RemoteStore.identify` sends."""
    return json.dumps({"items": [int(v) for v in items], "algorithm": 2}).encode()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--charts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--clients", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--rate", type=float, default=300.0,
                        help="requests/s offered in the open-loop runs (0: skip them)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--upload-every", type=float, default=2.0, metavar="S",
                        help="last run: identify (at --rate) while a chart is uploaded every "
                             "S seconds (0: skip it)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(5)
    t = time.perf_counter()
    charts = make_charts(args.charts + 20, rng)
    charts, fresh = charts[:args.charts], charts[args.charts:]  # fresh: uploaded under load
    fetches = [http_request("GET", f"/charts/{c.id}") for c in charts]
    # Identify queries: 5 s (19 items) from random points of random indexed charts.
    excerpts = []
    for i in rng.integers(0, len(charts), 200):
        items = charts[i].fingerprint.items
        start = int(rng.integers(0, max(1, len(items) - 19)))
        excerpts.append((charts[i].id, items[start:start + 19]))
    identifies = [http_request("POST", "/identify", identify_body(items)) for _, items in excerpts]
    result = {"charts": len(charts), "workers": args.workers, "clients": args.clients,
              "cpus": os.cpu_count(), "loadavg_at_start": round(os.getloadavg()[0], 2),
              "make_charts_s": round(time.perf_counter() - t, 1), "databases": {}}
    for kind in args.databases.split(","):
        with _database(kind) as url:
            result["databases"][kind] = _run_database(url, args, charts, fresh, identifies,
                                                      fetches, excerpts)
        print(f"{kind} done", file=sys.stderr)
    print(json.dumps(result))
    return 0


@contextlib.contextmanager
def _database(kind: str):
    """A fresh database URL of ``kind`` (a temporary SQLite file, or a PostgreSQL schema from
    ``scripts/services.sh``), removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="loopjam-bench-") as tmp:
            yield f"sqlite:///{tmp}/server.sqlite3"
        return
    import psycopg

    url = subprocess.run(["sh", "scripts/services.sh"], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    schema = f"bench_{time.time_ns()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _run_database(url, args, charts, fresh, identifies, fetches, excerpts) -> dict:
    """Seed the database at ``url``, serve it and load it; the entry of the report."""
    import requests as http

    from tests.fixtures.chart_server import start_server, stop_server

    seed_s, token = seed(url, charts)
    entry = {"seed_s": round(seed_s, 1)}
    t = time.perf_counter()
    proc, server = start_server(url, extra_args=["--workers", str(args.workers)],
                                timeout_s=600)
    try:
        entry["start_s"] = round(time.perf_counter() - t + _wait_idle(proc.pid), 1)
        hits = sum(http.post(server + "/identify", data=identify_body(items), timeout=10)
                   .json()["match"]["chart_id"] == chart_id for chart_id, items in excerpts[:50])
        entry["identify_hit_rate"] = hits / 50
        for name, requests in (("identify", identifies), ("fetch", fetches)):
            entry[name] = measure(proc.pid, server, requests, clients=args.clients,
                                  seconds=args.seconds, rate=None)
            if args.rate:
                entry[f"{name}_at_rate"] = measure(proc.pid, server, requests,
                                                   clients=args.clients,
                                                   seconds=args.seconds, rate=args.rate)
        if args.upload_every:
            uploader = upload_during(server, token, fresh, every_s=args.upload_every,
                                     seconds=args.seconds)
            entry["identify_while_uploading"] = measure(
                proc.pid, server, identifies, clients=args.clients, seconds=args.seconds,
                rate=args.rate or None)
            uploader.join()
    finally:
        stop_server(proc)
    return entry


if __name__ == "__main__":
    sys.exit(main())

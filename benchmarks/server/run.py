"""Chart server throughput and latency on loopback: SQLite vs PostgreSQL, 10,000 charts.

Each database gets ``--charts`` charts whose fingerprints are real music (the benchmark
recordings' libchromaprint items plus pitch/tempo variants of them, see
``benchmarks.identify.variants``), a real ``loopjam serve --workers N`` on 127.0.0.1, and
``--clients`` concurrent clients (processes x threads, keep-alive HTTP sessions) for
``--seconds`` per endpoint:

- identify: POST /identify with the items of a 5 s excerpt of an indexed recording;
- fetch: GET /charts/{id} of a random chart.

Reported per database and endpoint: requests/s, latency p50/p99, errors. The clients share
the machine's cores with the server (the figures are for everything on one box).

    scripts/services.sh   # PostgreSQL
    nice -n 10 .venv/bin/python -m benchmarks.server.run [--charts 10000] [--workers 2]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from chart_store.chart import Chart, ChartMeta, Fingerprint, Note
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


def seed(db_url: str, charts: list[Chart]) -> float:
    store = ServerStore(db_url)
    owner = store.token_id(store.issue_token(f"bench-{time.time_ns()}"))
    t = time.perf_counter()
    for chart in charts:
        store.upload(chart, owner=owner)
    store.db.close()
    return time.perf_counter() - t


def _client(url, kind, payloads, seconds, threads, queue):
    import requests

    def worker(out):
        session = requests.Session()
        rng = np.random.default_rng()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            payload = payloads[rng.integers(len(payloads))]
            t = time.perf_counter()
            try:
                if kind == "identify":
                    r = session.post(url + "/identify", json=payload, timeout=10)
                else:
                    r = session.get(f"{url}/charts/{payload}", timeout=10)
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            out.append((time.perf_counter() - t, ok))

    results = [[] for _ in range(threads)]
    pool = [threading.Thread(target=worker, args=(r,)) for r in results]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    queue.put([x for r in results for x in r])


def load_test(url, kind, payloads, *, clients, seconds) -> dict:
    procs_n = min(4, clients)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(url, kind, payloads, seconds,
                                                clients // procs_n, queue))
             for _ in range(procs_n)]
    t = time.perf_counter()
    for p in procs:
        p.start()
    samples = [x for _ in procs for x in queue.get()]
    for p in procs:
        p.join()
    wall = time.perf_counter() - t
    latency = np.array([s for s, ok in samples if ok]) * 1e3
    return {"requests": len(samples), "errors": sum(not ok for _, ok in samples),
            "rps": round(len(samples) / seconds, 1),
            "p50_ms": round(float(np.percentile(latency, 50)), 2) if latency.size else None,
            "p99_ms": round(float(np.percentile(latency, 99)), 2) if latency.size else None,
            "wall_s": round(wall, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--charts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    from tests.fixtures.chart_server import start_server, stop_server

    rng = np.random.default_rng(5)
    t = time.perf_counter()
    charts = make_charts(args.charts, rng)
    ids = [c.id for c in charts]
    # Identify queries: 5 s (19 items) from random points of random indexed charts.
    queries = []
    for i in rng.integers(0, len(charts), 200):
        items = charts[i].fingerprint.items
        start = int(rng.integers(0, max(1, len(items) - 19)))
        queries.append({"items": [int(v) for v in items[start:start + 19]]})
    result = {"charts": len(charts), "workers": args.workers, "clients": args.clients,
              "make_charts_s": round(time.perf_counter() - t, 1), "databases": {}}
    for kind in args.databases.split(","):
        if kind == "sqlite":
            tmp = tempfile.mkdtemp(prefix="loopjam-bench-")
            url = f"sqlite:///{tmp}/server.sqlite3"
        else:
            url = subprocess.run(["sh", "scripts/services.sh"], capture_output=True, text=True,
                                 check=True).stdout.strip().splitlines()[-1]
            import psycopg
            schema = f"bench_{time.time_ns()}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url = f"{url}?options=-csearch_path%3D{schema}"
        entry = {"seed_s": round(seed(url, charts), 1)}
        proc, server = start_server(url, extra_args=["--workers", str(args.workers)])
        try:
            import requests
            t = time.perf_counter()
            for q in queries[:20]:  # every worker builds its index on first use
                requests.post(server + "/identify", json=q, timeout=120)
            entry["warmup_s"] = round(time.perf_counter() - t, 1)
            hits = sum(requests.post(server + "/identify", json=q, timeout=10).json()["match"]
                       is not None for q in queries[:50])
            entry["identify_hit_rate"] = hits / 50
            entry["identify"] = load_test(server, "identify", queries, clients=args.clients,
                                          seconds=args.seconds)
            entry["fetch"] = load_test(server, "fetch", ids, clients=args.clients,
                                       seconds=args.seconds)
        finally:
            stop_server(proc)
        result["databases"][kind] = entry
        print(f"{kind} done", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

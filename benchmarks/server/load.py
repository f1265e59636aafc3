"""A light HTTP/1.1 load generator for the chart server benchmark: asyncio, keep-alive.

The generator shares the machine's cores with the server, so it must cost far less per request
than the server does: each connection is a raw asyncio stream writing pre-built requests and
reading ``Content-Length`` framed answers (no HTTP library, no JSON decoding). It runs in a
process of its own, which reports its CPU time, so the report shows what it took.

Two modes:

- closed loop (``rate=None``): ``clients`` connections, each sending its next request as soon
  as the answer arrives — the most the server (and the box) can do;
- open loop (``rate=R``): requests are *scheduled* at R per second whatever the answers do,
  spread over ``clients`` connections, and latency counts from the scheduled time, so a slow
  server cannot hide its queue by slowing the generator down (no coordinated omission).

- :func:`run_load` — one run in a child process, returns :class:`LoadResult`;
- :func:`http_request` — the bytes of one request;
- :func:`process_tree_cpu_s` — CPU seconds used so far by a process and its descendants.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass
from queue import Empty
from urllib.parse import urlsplit

import numpy as np

__all__ = ["LoadResult", "run_load", "http_request", "process_tree_cpu_s"]


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured. Latencies are in ms; ``generator_cpu_pct`` is the load
    generator's CPU time over the run's wall time (100 = one core)."""

    mode: str
    clients: int
    offered_rps: float | None
    requests: int
    errors: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    generator_cpu_pct: float

    def to_json(self) -> dict:
        return asdict(self)


def http_request(method: str, path: str, body: bytes = b"", *,
                 content_type: str = "application/json") -> bytes:
    """One keep-alive HTTP/1.1 request, ready to write to a socket."""
    head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\n"
    if body or method == "POST":
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _exchange(reader, writer, request: bytes) -> bool:
    """Send one request, read its whole answer; True for a 200."""
    writer.write(request)
    status = await reader.readline()
    length = None
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:  # the server always frames its answers; anything else is an error
        raise ConnectionError("answer without Content-Length")
    await reader.readexactly(length)
    return status.split(b" ", 2)[1] == b"200"


async def _load(host, port, requests, clients, seconds, rate, seed):
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(requests), 1 << 16)
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    end = start + seconds
    count = 0

    def next_request() -> bytes:
        nonlocal count
        count += 1
        return requests[picks[count % picks.size]]

    async def connect():
        return await asyncio.open_connection(host, port)

    async def exchange(conn: list) -> bool:
        """One request on ``conn`` ([reader, writer]); a broken connection is replaced."""
        try:
            return await _exchange(conn[0], conn[1], next_request())
        except (ConnectionError, asyncio.IncompleteReadError):
            conn[1].close()
            conn[:] = await connect()
            return False

    async def closed_client():
        nonlocal errors
        conn = list(await connect())
        while time.perf_counter() < end:
            t = time.perf_counter()
            ok = await exchange(conn)
            latencies.append(time.perf_counter() - t)
            errors += not ok
        conn[1].close()

    schedule: asyncio.Queue = asyncio.Queue()

    async def open_client():
        nonlocal errors
        conn = list(await connect())
        while True:
            due = await schedule.get()
            if due is None:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ok = await exchange(conn)
            latencies.append(time.perf_counter() - due)
            errors += not ok
        conn[1].close()

    async def scheduler():
        n = int(seconds * rate)
        for k in range(n):
            due = start + k / rate
            # Keep the queue short so an overloaded server shows as latency, not as a burst.
            while due - time.perf_counter() > 0.05:
                await asyncio.sleep(min(0.02, due - time.perf_counter()))
            schedule.put_nowait(due)
        for _ in range(clients):
            schedule.put_nowait(None)

    if rate is None:
        await asyncio.gather(*(closed_client() for _ in range(clients)))
    else:
        await asyncio.gather(scheduler(), *(open_client() for _ in range(clients)))
    return latencies, errors, time.perf_counter() - start


def _child(url, requests, clients, seconds, rate, seed, queue):
    split = urlsplit(url)
    cpu = time.process_time()
    latencies, errors, wall = asyncio.run(_load(split.hostname, split.port, requests, clients,
                                                seconds, rate, seed))
    queue.put((latencies, errors, wall, time.process_time() - cpu))


def run_load(url: str, requests: list[bytes], *, clients: int, seconds: float,
             rate: float | None = None, seed: int = 0) -> LoadResult:
    """Load the server at ``url`` with ``requests`` (picked at random) from a child process.

    Parameters
    ----------
    url : str
        ``http://HOST:PORT`` of the server.
    requests : list of bytes
        Complete requests (:func:`http_request`); a 200 answer counts as success.
    clients : int
        Keep-alive connections.
    seconds : float
        Duration of the run (open loop: requests scheduled over this time).
    rate : float, optional
        Requests per second to offer (open loop); None for a closed loop.
    """
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(url, requests, clients, seconds, rate, seed, queue))
    child.start()
    while True:  # an open loop against a stalled server may run well past ``seconds``
        try:
            latencies, errors, wall, cpu = queue.get(timeout=1.0)
            break
        except Empty:
            if not child.is_alive():
                raise RuntimeError(f"the load generator died (exit {child.exitcode})") from None
    child.join()
    ms = np.array(latencies) * 1e3

    def pct(q):
        return round(float(np.percentile(ms, q)), 2) if ms.size else None

    return LoadResult(mode="closed" if rate is None else "open", clients=clients,
                      offered_rps=rate, requests=len(latencies), errors=errors,
                      rps=round(len(latencies) / wall, 1), p50_ms=pct(50), p99_ms=pct(99),
                      max_ms=pct(100), generator_cpu_pct=round(100 * cpu / wall, 1))


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its living descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # Fields after the parenthesised command name (which may hold spaces).
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += int(stats[p][11]) + int(stats[p][12])  # utime, stime
        todo.extend(children.get(p, ()))
    return total / os.sysconf("SC_CLK_TCK")

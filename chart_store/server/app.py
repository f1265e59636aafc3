"""The chart server's HTTP API (FastAPI). Its OpenAPI document (``/openapi.json``) is the contract.

Endpoints:

- ``GET /health`` — liveness and chart count;
- ``GET /charts?q=&limit=&offset=`` — search by title/artist;
- ``GET /charts/{chart_id}`` — the chart file; ``GET /charts/{chart_id}/info`` — its row;
- ``POST /charts`` — upload a chart file (bearer token; ``?replaces=ID`` supersedes one of the
  token's own charts); ``DELETE /charts/{chart_id}`` — remove one of the token's charts;
- ``POST /identify`` — fingerprint items in, ``{"match": ...}`` out (clients never send audio).

Every upload goes through the strict chart reader; bodies are size-limited before they are
read; writes are rate-limited per token; every error is a JSON ``{"error": "..."}`` with a 4xx
status (a 500 says "internal server error" and nothing more).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

import chart_store
from chart_store.chartfile import ChartFormatError, loads
from chart_store.chart import ChartError
from chart_store.fingerprint import ALGORITHM
from chart_store.local import ChartNotFound
from chart_store.server.storage import Forbidden, ServerStore

__all__ = ["create_app", "app_from_env", "Limits"]

log = logging.getLogger("loopjam.server")

_CHART_ID = re.compile(r"^[0-9a-f]{24}$")
#: A query longer than this (about 4 minutes) is not "a few seconds".
MAX_IDENTIFY_ITEMS = 2048
#: An upload or delete is answered once this worker's index includes it, or after this many
#: seconds (a big index is rebuilt in seconds; the client's timeout must not run out first).
CATCH_UP_S = 2.0


@dataclass(frozen=True)
class Limits:
    """Server limits: body sizes in bytes, write rate per token (requests/s and burst)."""

    max_upload_bytes: int = 16 * 2**20
    max_json_bytes: int = 64 * 2**10
    writes_per_s: float = 2.0
    write_burst: int = 20


class _TokenBuckets:
    """Per-token token buckets: ``take(key)`` is 0 when allowed, else seconds to wait."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._state: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key) -> float:
        now = time.monotonic()
        with self._lock:
            level, last = self._state.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - last) * self.rate)
            if level >= 1.0:
                self._state[key] = (level - 1.0, now)
                return 0.0
            self._state[key] = (level, now)
            return (1.0 - level) / self.rate


class _BodyLimit:
    """ASGI middleware: refuse bodies above the limit (413) before the app reads them."""

    def __init__(self, app, limits: Limits):
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        is_upload = scope["method"] == "POST" and scope["path"].rstrip("/") == "/charts"
        limit = self.limits.max_upload_bytes if is_upload else self.limits.max_json_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _send_error(send, 413, f"request body over {limit} bytes")
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return await _send_error(send, 413, f"request body over {limit} bytes")
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _send_error(send, status: int, message: str) -> None:
    payload = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})


class _IndexWatcher:
    """Keeps the server's identification index current from a low-priority thread.

    The next index is built there (seconds at 10,000 charts) while identifications go on with
    the current one: every ``interval_s`` for changes made by other workers or hosts, and at
    once after a change made here (:meth:`catch_up`).
    """

    def __init__(self, store: ServerStore, *, interval_s: float):
        self.store, self.interval_s = store, interval_s
        self._wake = threading.Event()
        self._built = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="index-refresh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _run(self) -> None:
        if hasattr(os, "setpriority"):  # Linux: a per-thread nice value; requests go first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while not self._stopping:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            try:
                self.store.refresh()
            except Exception:  # a database hiccup: try again at the next check
                log.exception("refreshing the fingerprint index failed")
            with self._built:
                self._built.notify_all()

    def catch_up(self, *, timeout_s: float) -> bool:
        """Have the index include every change committed so far; wait for it at most
        ``timeout_s`` (a big index finishes later). True when it does."""
        target = self.store.catalog.generation()
        deadline = time.monotonic() + timeout_s
        with self._built:
            self._wake.set()
            while (self.store.indexed_generation is None
                   or self.store.indexed_generation < target):
                left = deadline - time.monotonic()
                if left <= 0 or not self._built.wait(left):
                    return False
        return True


def _invalid(errors, *, prefix: tuple = ()) -> JSONResponse:
    """The 422 answer for validation ``errors`` (pydantic's list): where and what, briefly."""
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in (*prefix, *first.get("loc", ())))
    return JSONResponse({"error": f"invalid request: {where}: {first.get('msg', '')}"[:300]},
                        status_code=422)


class ErrorBody(BaseModel):
    error: str


class MatchBody(BaseModel):
    chart_id: str
    title: str
    artist: str
    offset_s: float = Field(description="chart time (s) of the query's first sample")
    confidence: float = Field(ge=0, le=1)


class IdentifyRequest(BaseModel):
    items: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] = Field(
        min_length=1, max_length=MAX_IDENTIFY_ITEMS,
                             description="Chromaprint raw items (uint32), one per 0.1238 s")
    algorithm: Literal[2] = Field(default=ALGORITHM, description="Chromaprint algorithm (fpcalc "
                                                                "numbering); only 2 is indexed")

    model_config = {"extra": "forbid"}


class IdentifyResponse(BaseModel):
    match: MatchBody | None


class ChartInfoBody(BaseModel):
    chart_id: str
    title: str
    artist: str
    album: str
    duration_s: float
    source: str
    added_at: float


class ChartList(BaseModel):
    charts: list[ChartInfoBody]
    total: int


class UploadResult(BaseModel):
    chart_id: str
    created: bool


class Health(BaseModel):
    status: str
    charts: int
    database: str
    version: str


_ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 422, 429)}


def create_app(db_url: str, *, limits: Limits = Limits(), recheck_s: float = 1.0) -> FastAPI:
    """The chart server application over the database at ``db_url`` (sqlite:/// or
    postgresql://); the schema is migrated on creation. Changes made by other processes reach
    identification within ``recheck_s`` seconds plus the time to rebuild the index."""
    store = ServerStore(db_url)
    watcher = _IndexWatcher(store, interval_s=recheck_s)
    buckets = _TokenBuckets(limits.writes_per_s, limits.write_burst)
    bearer = HTTPBearer(auto_error=False, description="a token from `loopjam serve --issue-token`")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        # Build the fingerprint index before serving (uvicorn accepts connections only after
        # this): seconds at 10,000 charts, which would otherwise fall on the first queries.
        await run_in_threadpool(store.refresh)
        log.info("fingerprint index ready: %d charts, %.1f MiB", len(store.index),
                 store.index.nbytes / 2**20)
        watcher.start()
        yield
        watcher.stop()

    app = FastAPI(title="LoopJam chart server", version=chart_store.__version__,
                  description="Share LoopJam charts by audio fingerprint. Reads are open; "
                              "uploads need a bearer token.", lifespan=lifespan)
    app.state.store = store

    def fail(status: int, message: str, headers: dict | None = None):
        raise HTTPException(status, message, headers=headers)

    def owner(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> int:
        if credentials is None:
            fail(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
        token_id = store.token_id(credentials.credentials)
        if token_id is None:
            fail(401, "invalid token", {"WWW-Authenticate": "Bearer"})
        wait = buckets.take(token_id)
        if wait:
            fail(429, "too many requests for this token", {"Retry-After": str(math.ceil(wait))})
        return token_id

    async def read(function, *args):
        """Run a short database read: on the event loop for SQLite (a local read of tens of
        microseconds costs less than the hand-off to a worker thread, ~0.3 ms), in a thread
        for PostgreSQL (a network round trip must not stall the event loop)."""
        if store.db.kind == "sqlite":
            return function(*args)
        return await run_in_threadpool(function, *args)

    def check_id(chart_id: str) -> None:
        if not _CHART_ID.match(chart_id):
            fail(404, f"no chart {chart_id[:40]!r}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code,
                            headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return _invalid(error.errors())

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal server error"}, status_code=500)

    @app.get("/health", response_model=Health)
    def health():
        return Health(status="ok", charts=store.catalog.count(), database=store.db.kind,
                      version=chart_store.__version__)

    @app.get("/charts", response_model=ChartList, responses=_ERRORS)
    def search(q: str = Query("", max_length=200, pattern=r"^[^\x00]*$",
                              description="part of a title or artist"),
               limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10**9)):
        rows = store.catalog.search(q, limit=limit, offset=offset)
        return ChartList(charts=[ChartInfoBody(**{k: v for k, v in r.to_json().items()
                                                  if k != "origin"}) for r in rows],
                         total=len(rows))

    @app.get("/charts/{chart_id}", responses={200: {"content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        **_ERRORS}, response_class=Response)
    async def fetch(chart_id: str):
        check_id(chart_id)
        try:
            data = await read(store.fetch, chart_id)
        except ChartNotFound:
            fail(404, f"no chart {chart_id}")
        return Response(data, media_type="application/octet-stream")

    @app.get("/charts/{chart_id}/info", response_model=ChartInfoBody, responses=_ERRORS)
    def info(chart_id: str):
        check_id(chart_id)
        row = store.catalog.info(chart_id)
        if row is None:
            fail(404, f"no chart {chart_id}")
        return ChartInfoBody(**{k: v for k, v in row.to_json().items() if k != "origin"})

    @app.post("/charts", response_model=UploadResult, status_code=201, responses={
        200: {"model": UploadResult, "description": "the chart was already there"}, **_ERRORS},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload(request: Request, token_id: int = Depends(owner),
                     replaces: str | None = Query(None, max_length=64,
                                                  description="one of your charts to replace")):
        data = await request.body()
        if replaces is not None:
            check_id(replaces)

        def store_it():
            try:
                chart = loads(data)
            except (ChartFormatError, ChartError) as error:
                fail(422, f"invalid chart file: {error}"[:300])
            meta = chart.meta
            if any("\x00" in text for text in (meta.title, meta.artist, meta.album)):
                fail(422, "invalid chart file: text fields must not contain NUL characters")
            try:
                result = store.upload(chart, owner=token_id, replaces=replaces)
            except Forbidden as error:
                fail(403, str(error))
            except ChartNotFound as error:
                fail(404, str(error))
            watcher.catch_up(timeout_s=CATCH_UP_S)
            return result

        result = await run_in_threadpool(store_it)
        return JSONResponse({"chart_id": result.chart_id, "created": result.created},
                            status_code=201 if result.created else 200)

    @app.delete("/charts/{chart_id}", status_code=204, responses=_ERRORS,
                response_class=Response)
    def delete(chart_id: str, token_id: int = Depends(owner)):
        check_id(chart_id)
        try:
            store.delete(chart_id, owner=token_id)
        except Forbidden as error:
            fail(403, str(error))
        except ChartNotFound:
            fail(404, f"no chart {chart_id}")
        watcher.catch_up(timeout_s=CATCH_UP_S)
        return Response(status_code=204)

    @app.post("/identify", response_model=IdentifyResponse, responses=_ERRORS,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": IdentifyRequest.model_json_schema()}}}})
    async def identify(request: Request):
        # The hot path: the body is parsed and validated in one pass by pydantic-core and the
        # answer is written directly (no FastAPI body or response models). The lookup reads
        # the in-memory index (~1-2 ms of NumPy, no database), which costs less on the event
        # loop than handed to a thread.
        import numpy as np

        try:
            body = IdentifyRequest.model_validate_json(await request.body())
        except ValidationError as error:
            return _invalid(error.errors(include_url=False), prefix=("body",))
        match = store.identify(np.array(body.items, dtype=np.uint32))
        return Response(json.dumps({"match": match.to_json() if match else None}),
                        media_type="application/json")

    app.add_middleware(_BodyLimit, limits=limits)  # outermost: before anything reads the body
    return app


def app_from_env() -> FastAPI:
    """The app configured by environment variables (how ``loopjam serve`` hands its options
    to each uvicorn worker): ``LOOPJAM_SERVER_DB`` (database URL), ``LOOPJAM_SERVER_LIMITS``
    (JSON of :class:`Limits` fields)."""
    limits = Limits(**json.loads(os.environ.get("LOOPJAM_SERVER_LIMITS", "{}")))
    return create_app(os.environ["LOOPJAM_SERVER_DB"], limits=limits)

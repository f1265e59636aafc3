"""What the chart server keeps: charts (bytes in the database), tokens, the catalogue.

The server is stateless apart from its database, so several workers (or hosts) can share one
PostgreSQL: chart files are stored in ``chart_data`` rather than on a local disk, and every
worker keeps its own in-memory fingerprint index in step with the shared catalogue.

Identification never waits for that index to be rebuilt (seconds at 10,000 charts): it reads a
complete index that never changes, and :meth:`ServerStore.refresh` (called by the server's
watcher thread) builds the next one aside when the catalogue's change counter moved, then
swaps it in.

- :class:`ServerStore` — ``upload``, ``fetch``, ``delete``, ``identify``, ``refresh``,
  ``issue_token``, ``token_id``, plus its :class:`~chart_store.catalog.Catalog` (rows: search,
  info, count);
- :class:`Forbidden` — a token touching a chart it does not own.
"""
from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from dataclasses import dataclass

import numpy as np

from chart_store.catalog import Catalog
from chart_store.chart import Chart
from chart_store.chartfile import chart_id as content_id, dumps
from chart_store.db import Database, Migration
from chart_store.fingerprint import Match
from chart_store.index import FingerprintIndex
from chart_store.local import ChartNotFound

__all__ = ["ServerStore", "Forbidden", "Upload"]

MIGRATIONS = [
    Migration(1001, "server: chart bytes and upload tokens", """
        CREATE TABLE chart_data (
            chart_id TEXT PRIMARY KEY REFERENCES charts (id) ON DELETE CASCADE,
            data {blob} NOT NULL
        );
        CREATE TABLE tokens (
            id {serial},
            name TEXT NOT NULL UNIQUE,
            token_hash TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL
        )
    """),
]


class Forbidden(PermissionError):
    """The token may not change this chart (another token uploaded it)."""


@dataclass(frozen=True)
class Upload:
    """Result of an upload: the chart's id and whether it was new."""

    chart_id: str
    created: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ServerStore:
    """The chart server's database: ``Database(url)`` plus the shared catalogue schema.

    ``catalog`` holds the rows (its own index is never loaded); identification goes through a
    second catalogue, which :meth:`refresh` replaces by an updated copy and never changes.
    """

    def __init__(self, url: str):
        self.db = Database(url)
        self.catalog = Catalog(self.db, MIGRATIONS)
        self._searcher: Catalog | None = None
        self._searched = None  # the change counter the searcher was built at
        self._refresh_lock = threading.Lock()

    def refresh(self) -> bool:
        """Rebuild the identification index if the catalogue changed since the last build (by
        this process or another); True when it did. The new index starts as a copy of the
        current one and reads only the charts that changed, then builds its search arrays
        (seconds at 10,000 charts), so servers call it off the request path; searches
        meanwhile use the previous index."""
        with self._refresh_lock:
            generation = self.catalog.generation()
            if generation == self._searched:
                return False
            # Never syncs again by itself: it is replaced whole.
            fresh = (Catalog(self.db, MIGRATIONS, recheck_s=math.inf) if self._searcher is None
                     else self._searcher.copy(recheck_s=math.inf))
            fresh.sync_index()
            _ = fresh.index.nbytes  # builds the search arrays now, not on the first search
            self._searcher, self._searched = fresh, generation
            return True

    @property
    def indexed_generation(self) -> int | None:
        """The catalogue's change counter when the current index was built (None: none yet)."""
        return self._searched

    def _current(self) -> Catalog:
        """The catalogue of the last :meth:`refresh` (the first call builds it)."""
        if self._searcher is None:
            self.refresh()
        return self._searcher

    @property
    def index(self) -> FingerprintIndex:
        """The fingerprint index identification reads now (built on first use)."""
        return self._current().index

    def identify(self, items: np.ndarray) -> Match | None:
        """The chart fingerprint ``items`` come from, per the index of the last
        :meth:`refresh` (the first call builds it)."""
        return self._current().identify(items)

    def issue_token(self, name: str) -> str:
        """Create a token called ``name`` and return it (only its hash is stored).

        Tokens start with ``lj_``: recognisable in a config file or a leaked log, and never with
        "-", which a command line would take for an option (``--token -x...``; a bare URL-safe
        token starts with one 1 time in 64)."""
        token = "lj_" + secrets.token_urlsafe(32)
        with self.db.transaction():
            if self.db.scalar("SELECT 1 FROM tokens WHERE name = ?", (name,)):
                raise ValueError(f"a token named {name!r} already exists")
            self.db.execute("INSERT INTO tokens (name, token_hash, created_at) VALUES (?, ?, ?)",
                            (name, _hash(token), time.time()))
        return token

    def token_id(self, token: str) -> int | None:
        """The id of a valid token, None for an unknown one."""
        return self.db.scalar("SELECT id FROM tokens WHERE token_hash = ?", (_hash(token),))

    def upload(self, chart: Chart, *, owner: int, replaces: str | None = None) -> Upload:
        """Store ``chart`` for token ``owner``; ``replaces`` (one of the owner's charts) goes.

        Uploading a chart that is already there changes nothing (ids are content).
        Raises :class:`Forbidden` when ``replaces`` belongs to another token and
        :class:`~chart_store.local.ChartNotFound` when it does not exist.
        """
        chart_id = content_id(chart)
        data = dumps(chart)
        with self.db.transaction():
            if replaces is not None and replaces != chart_id:
                self._check_owner(replaces, owner)
                self.catalog.delete(replaces)
            created = self.catalog.insert(chart, chart_id, owner=owner)
            if created:
                self.db.execute("INSERT INTO chart_data VALUES (?, ?)", (chart_id, data))
        return Upload(chart_id=chart_id, created=created)

    def _check_owner(self, chart_id: str, owner: int) -> None:
        if not self.catalog.exists(chart_id):
            raise ChartNotFound(f"no chart {chart_id}")
        if self.catalog.owner(chart_id) != owner:
            raise Forbidden(f"chart {chart_id} belongs to another token")

    def delete(self, chart_id: str, *, owner: int) -> None:
        """Remove one of ``owner``'s charts."""
        with self.db.transaction():
            self._check_owner(chart_id, owner)
            self.catalog.delete(chart_id)

    def fetch(self, chart_id: str) -> bytes:
        """The chart file bytes of ``chart_id``; raises ChartNotFound."""
        data = self.db.scalar("SELECT data FROM chart_data WHERE chart_id = ?", (chart_id,))
        if data is None:
            raise ChartNotFound(f"no chart {chart_id}")
        return bytes(data)

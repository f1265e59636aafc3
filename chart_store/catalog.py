"""The chart catalogue shared by the local store and the chart server.

One schema over :class:`~chart_store.db.Database` (SQLite or PostgreSQL): a row per chart
(metadata, source rank), its fingerprint items, source hashes, and a generation counter that
every change bumps. :class:`Catalog` keeps an in-memory
:class:`~chart_store.index.FingerprintIndex` in step with the rows (incrementally, when the
counter moved: another process or server worker may have written), and turns index hits into
:class:`~chart_store.fingerprint.Match` es where human charts win.

- :class:`Catalog` — ``insert``, ``delete``, ``exists``, ``info``, ``search``, ``count``,
  ``identify``;
- :class:`ChartInfo` — one row as listings show it;
- :data:`MIGRATIONS` — the schema steps.

Where chart files live is the caller's business (files for the local store, a table for the
server).
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

from chart_store.chart import Chart
from chart_store.db import Database, Migration
from chart_store.fingerprint import ALGORITHM, Match
from chart_store.index import FingerprintIndex, Hit, accept_ber

__all__ = ["Catalog", "ChartInfo", "MIGRATIONS", "SAME_RECORDING_BER", "pick_match"]

#: Charts whose bit error rate is within this of the best one are the same recording: among
#: them the highest-ranked source (human over generated) wins.
SAME_RECORDING_BER = 0.05

MIGRATIONS = [
    Migration(1, "charts, fingerprints, source hashes, generation counter", """
        CREATE TABLE charts (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            artist TEXT NOT NULL,
            album TEXT NOT NULL,
            duration_s DOUBLE PRECISION NOT NULL,
            source TEXT NOT NULL,
            source_rank INTEGER NOT NULL,
            added_at DOUBLE PRECISION NOT NULL,
            origin TEXT,
            owner BIGINT
        );
        CREATE INDEX charts_title ON charts (title);
        CREATE INDEX charts_owner ON charts (owner);
        CREATE TABLE fingerprints (
            chart_id TEXT PRIMARY KEY REFERENCES charts (id) ON DELETE CASCADE,
            items {blob} NOT NULL
        );
        CREATE TABLE sources (
            source_hash TEXT PRIMARY KEY,
            chart_id TEXT NOT NULL REFERENCES charts (id) ON DELETE CASCADE
        );
        CREATE INDEX sources_chart ON sources (chart_id);
        CREATE TABLE generation (id INTEGER PRIMARY KEY, value BIGINT NOT NULL);
        INSERT INTO generation VALUES (1, 0)
    """),
    # Where a source file was last seen: an export finds the audio a chart was analyzed from.
    Migration(2, "source file paths", "ALTER TABLE sources ADD COLUMN path TEXT"),
]

_INFO_COLUMNS = "id, title, artist, album, duration_s, source, added_at, origin"


@dataclass(frozen=True)
class ChartInfo:
    """A catalogue row: what a listing shows without reading the chart.

    ``origin`` is the server URL a cached chart came from, None for charts made here.
    """

    chart_id: str
    title: str
    artist: str
    album: str
    duration_s: float
    source: str
    added_at: float
    origin: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def pick_match(hits: list[Hit], meta: dict) -> Match | None:
    """The :class:`Match` for index ``hits`` (best first), preferring human charts.

    ``meta`` maps chart id -> (title, artist, source rank). Hits within
    :data:`SAME_RECORDING_BER` of the best are the same recording charted more than once;
    the highest rank wins among them, then the lowest bit error rate.
    """
    hits = [h for h in hits if h.key in meta]
    if not hits:
        return None
    best_ber = min(h.bit_error_rate for h in hits)
    same = [h for h in hits if h.bit_error_rate <= best_ber + SAME_RECORDING_BER]
    hit = max(same, key=lambda h: (meta[h.key][2], -h.bit_error_rate))
    title, artist, _ = meta[hit.key]
    confidence = float(np.clip(1.0 - hit.bit_error_rate / accept_ber(hit.overlap), 0.0, 1.0))
    return Match(chart_id=hit.key, title=title, artist=artist, offset_s=round(hit.offset_s, 4),
                 confidence=round(confidence, 4))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Catalog:
    """Chart rows and their fingerprint index in one database.

    Parameters
    ----------
    db : Database
        Where the rows live; :data:`MIGRATIONS` plus ``migrations`` are applied.
    migrations : list of Migration
        The caller's own tables (numbered from 1001 so they never collide with these).
    recheck_s : float
        Seconds between checks for changes made by *other* processes (0: before every
        identification). Changes made through this catalogue are seen at once.
    """

    def __init__(self, db: Database, migrations: list[Migration] = (), *,
                 recheck_s: float = 0.0):
        self.db = db
        db.migrate(MIGRATIONS + list(migrations))
        self.index = FingerprintIndex()
        self.recheck_s = recheck_s
        self._meta: dict[str, tuple[str, str, int]] = {}
        self._generation = None
        self._checked_at = -float("inf")
        self._sync_lock = threading.Lock()

    def copy(self, *, recheck_s: float) -> Catalog:
        """A catalogue of the same database holding a copy of this one's index, to bring up to
        date aside (:meth:`sync_index` then reads only the charts that changed) while this one
        goes on answering; the schema is already migrated."""
        other = copy.copy(self)
        other.index = self.index.copy()
        other._meta = dict(self._meta)
        other.recheck_s = recheck_s
        other._checked_at = -float("inf")
        other._sync_lock = threading.Lock()
        return other

    def insert(self, chart: Chart, chart_id: str, *, origin: str | None = None,
               owner: int | None = None, source_hash: str | None = None,
               source_path: str | None = None) -> bool:
        """Add the row of ``chart`` (call inside a transaction); False if it was there.
        ``source_hash`` / ``source_path``: see :meth:`add_source`."""
        meta = chart.meta
        inserted = self.db.execute(
            "INSERT INTO charts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (chart_id, meta.title, meta.artist, meta.album, float(meta.duration_s),
             meta.source.value, meta.source.rank, time.time(), origin, owner)).rowcount > 0
        if inserted:
            fp = chart.fingerprint
            # Only fingerprints of the indexed algorithm can be compared with queries.
            items = (np.asarray(fp.items, "<u4").tobytes()
                     if fp is not None and fp.algorithm == ALGORITHM else b"")
            self.db.execute("INSERT INTO fingerprints VALUES (?, ?)", (chart_id, items))
        if source_hash is not None:
            self.add_source(source_hash, chart_id, source_path)
        self.bump()
        return inserted

    def add_source(self, source_hash: str, chart_id: str, path: str | None = None) -> None:
        """Remember that the source with this content hash (found at ``path``, when given: the
        last place it was seen) made ``chart_id``."""
        self.db.execute(
            "INSERT INTO sources (source_hash, chart_id, path) VALUES (?, ?, ?) "
            "ON CONFLICT (source_hash) DO UPDATE SET chart_id = excluded.chart_id, "
            "path = coalesce(excluded.path, sources.path)", (source_hash, chart_id, path))

    def delete(self, chart_id: str) -> bool:
        """Remove the row of ``chart_id`` (call inside a transaction); False if absent."""
        gone = self.db.execute("DELETE FROM charts WHERE id = ?", (chart_id,)).rowcount > 0
        if gone:
            self.bump()
        return gone

    def bump(self) -> None:
        """Tell every reader (other processes too) that the catalogue changed."""
        self.db.execute("UPDATE generation SET value = value + 1 WHERE id = 1")
        self.invalidate()

    def generation(self) -> int:
        """The change counter: every change, by any process, increases it."""
        return int(self.db.scalar("SELECT value FROM generation WHERE id = 1"))

    def invalidate(self) -> None:
        """Check for changes before the next identification (call after committing one)."""
        self._checked_at = -float("inf")

    def exists(self, chart_id: str) -> bool:
        return bool(self.db.scalar("SELECT 1 FROM charts WHERE id = ?", (chart_id,)))

    def info(self, chart_id: str) -> ChartInfo | None:
        rows = self.db.query(f"SELECT {_INFO_COLUMNS} FROM charts WHERE id = ?", (chart_id,))
        return ChartInfo(*rows[0]) if rows else None

    def owner(self, chart_id: str) -> int | None:
        return self.db.scalar("SELECT owner FROM charts WHERE id = ?", (chart_id,))

    def count(self) -> int:
        return int(self.db.scalar("SELECT count(*) FROM charts"))

    def search(self, query: str = "", *, limit: int | None = None, offset: int = 0
               ) -> list[ChartInfo]:
        """Rows whose title, artist or id contains ``query`` (case-insensitive; all when
        empty), sorted by artist then title."""
        like = f"%{_escape_like(query.lower())}%"
        page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
        rows = self.db.query(
            f"SELECT {_INFO_COLUMNS} FROM charts WHERE lower(title) LIKE ? ESCAPE '\\' "
            "OR lower(artist) LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' "
            "ORDER BY lower(artist), lower(title), id" + page, (like, like, like))
        return [ChartInfo(*row) for row in rows]

    def chart_for_source(self, source_hash: str) -> str | None:
        return self.db.scalar("SELECT chart_id FROM sources WHERE source_hash = ?",
                              (source_hash,))

    def sources_of(self, chart_id: str) -> list[tuple[str, str]]:
        """(content hash, path) of each source file of ``chart_id`` whose path is known."""
        return [tuple(row) for row in self.db.query(
            "SELECT source_hash, path FROM sources WHERE chart_id = ? AND path IS NOT NULL "
            "ORDER BY path", (chart_id,))]

    def sync_index(self) -> None:
        """Bring the in-memory index up to the rows (one tiny query when nothing changed)."""
        now = time.monotonic()
        if now - self._checked_at < self.recheck_s:
            return
        self._checked_at = now
        generation = self.generation()
        if generation == self._generation:
            return
        with self._sync_lock:
            if generation == self._generation:
                return
            rows = self.db.query("SELECT id, title, artist, source_rank FROM charts")
            meta = {row[0]: (row[1], row[2], row[3]) for row in rows}
            for gone in set(self._meta) - set(meta):
                self.index.remove(gone)
            new = [cid for cid in meta if cid not in self.index]
            for start in range(0, len(new), 500):
                chunk = new[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for cid, blob in self.db.query(
                        f"SELECT chart_id, items FROM fingerprints WHERE chart_id IN ({marks})",
                        chunk):
                    if blob:
                        self.index.add(cid, np.frombuffer(bytes(blob), "<u4"))
            self._meta = meta
            self._generation = generation

    def identify(self, items: np.ndarray) -> Match | None:
        """The chart fingerprint ``items`` (a few seconds of audio) come from, or None."""
        self.sync_index()
        return pick_match(self.index.search(items), self._meta)

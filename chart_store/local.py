"""The local chart store: chart files by id plus a SQLite catalogue and fingerprint index.

Layout under ``root`` (default ``loopjam_home() / "store"``)::

    store.sqlite3            catalogue (WAL): charts, fingerprints, source files (content hash
                             and where last seen), migrations
    charts/ab/abcdef....chart one chart file per id, written with the strict chart writer

- :class:`LocalStore` — ``put``, ``get``, ``list``, ``remove``, ``identify``,
  ``chart_for_source``, ``saw_source``, ``source_files``, ``stats``;
- :class:`ChartInfo` — one catalogue row; :class:`StoreStats` — totals;
- :class:`ChartNotFound` — asked for an id the store does not hold.

Safety: a chart file is written to a temporary name, flushed to disk and renamed into place
*before* its catalogue row commits, and rows are removed before files, so a process killed at
any point leaves either the old state or the new one, never a row without its file. Writers
from several processes queue on SQLite's write lock (nothing is lost); each process keeps its
own in-memory :class:`~chart_store.index.FingerprintIndex` and brings it up to date when the
catalogue's generation counter moves.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from chart_store.catalog import Catalog, ChartInfo
from chart_store.chart import Chart, Fingerprint
from chart_store.chartfile import SUFFIX, chart_id as content_id, dumps, read_chart, write_atomic
from chart_store.db import Database
from chart_store.fingerprint import ALGORITHM, Match
from chart_store.home import loopjam_home

__all__ = ["LocalStore", "StoreStats", "ChartNotFound", "ChartInfo"]

# A temporary file older than this was left by a killed writer, not one still writing.
_STALE_TMP_S = 3600.0


class ChartNotFound(KeyError):
    """No chart with this id in the store."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class StoreStats:
    """Totals of a store: chart counts per source, fingerprint items, bytes on disk."""

    charts: int
    by_source: dict
    fingerprint_items: int
    source_hashes: int
    database_bytes: int
    chart_bytes: int
    root: str

    def to_json(self) -> dict:
        return asdict(self)


class LocalStore:
    """Charts on this machine, safe for several processes at once.

    Parameters
    ----------
    root : path-like, optional
        Store folder; default ``loopjam_home() / "store"``. Created on first use.

    Examples
    --------
    >>> store = LocalStore(tmp)                      # doctest: +SKIP
    >>> chart_id = store.put(chart, source_hash="sha256:...")   # doctest: +SKIP
    >>> store.identify(fingerprint(y, sr))           # doctest: +SKIP
    Match(chart_id='...', title='...', artist='...', offset_s=12.38, confidence=0.81)
    """

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else loopjam_home() / "store"
        self.charts_dir = self.root / "charts"
        self.charts_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(f"sqlite:///{self.root / 'store.sqlite3'}")
        self.catalog = Catalog(self.db)
        self._remove_stale_tmp()

    # -- files -------------------------------------------------------------------------------

    def path(self, chart_id: str) -> Path:
        """Where the file of ``chart_id`` lives (whether or not it exists)."""
        if not (isinstance(chart_id, str) and chart_id.isalnum() and 8 <= len(chart_id) <= 128):
            raise ChartNotFound(f"invalid chart id {chart_id!r}")
        return self.charts_dir / chart_id[:2] / f"{chart_id}{SUFFIX}"

    def _remove_stale_tmp(self) -> None:
        now = time.time()
        for tmp in self.charts_dir.glob("*/.*.tmp"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > _STALE_TMP_S:
                    tmp.unlink()

    # -- catalogue ---------------------------------------------------------------------------

    def put(self, chart: Chart, *, source_hash: str | None = None,
            source_path: str | os.PathLike | None = None, origin: str | None = None) -> str:
        """Store ``chart`` (idempotent: the id is its content); returns its id.

        ``source_hash`` (e.g. a hash of the audio file it was analysed from) is remembered so
        :meth:`chart_for_source` can skip re-analysis, and ``source_path`` (where that file is)
        so :meth:`source_files` can find it again; ``origin`` marks a chart cached from a
        server.
        """
        data = dumps(chart)
        chart_id = content_id(chart)
        path = self.path(chart_id)
        with self.db.transaction():
            # The file is written under the write lock, so a concurrent remove of the same id
            # cannot delete it between this write and the row below.
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, data)
            self.catalog.insert(chart, chart_id, origin=origin, source_hash=source_hash,
                                source_path=_absolute(source_path))
        return chart_id

    def get(self, chart_id: str) -> Chart:
        """The chart ``chart_id``; raises :class:`ChartNotFound`."""
        path = self.path(chart_id)
        if not self.catalog.exists(chart_id):
            raise ChartNotFound(f"no chart {chart_id} in the local store")
        return read_chart(path)

    def __contains__(self, chart_id: str) -> bool:
        return self.catalog.exists(chart_id)

    def resolve(self, prefix: str) -> str:
        """The id of the one stored chart whose id starts with ``prefix`` (a whole id, or the
        12-digit short id ``loopjam play`` prints); raises :class:`ChartNotFound` when none or
        several do, saying which."""
        if prefix in self:
            return prefix
        found = [c.chart_id for c in self.list() if c.chart_id.startswith(prefix.lower())]
        if len(found) != 1:
            raise ChartNotFound(f"no chart {prefix} in the local store" if not found else
                                f"{prefix} matches {len(found)} charts: give more of the id")
        return found[0]

    def info(self, chart_id: str) -> ChartInfo:
        """The catalogue row of ``chart_id``; raises :class:`ChartNotFound`."""
        info = self.catalog.info(chart_id)
        if info is None:
            raise ChartNotFound(f"no chart {chart_id} in the local store")
        return info

    def list(self, query: str = "") -> list[ChartInfo]:
        """Catalogue rows sorted by artist then title; ``query`` filters title/artist/id
        (case-insensitive substring)."""
        return self.catalog.search(query)

    def remove(self, chart_id: str) -> None:
        """Delete ``chart_id`` (row first, then file); raises :class:`ChartNotFound`."""
        path = self.path(chart_id)
        with self.db.transaction():
            if not self.catalog.delete(chart_id):
                raise ChartNotFound(f"no chart {chart_id} in the local store")
        # A separate step, so a crash in between leaves a stray file, never a row without one;
        # under the lock, so a concurrent put of the same chart keeps its file.
        with self.db.transaction():
            if chart_id not in self:
                with contextlib.suppress(OSError):
                    path.unlink()

    def chart_for_source(self, source_hash: str) -> str | None:
        """The chart made from the source with this hash, or None."""
        return self.catalog.chart_for_source(source_hash)

    def saw_source(self, source_hash: str, chart_id: str, path: str | os.PathLike) -> None:
        """Remember that the source file at ``path`` (content hash ``source_hash``), already
        charted as ``chart_id``, is there now (it may have moved since)."""
        path = _absolute(path)
        # Re-scanning a library sees most files where they were: no write (and no write lock
        # between analyze workers) for those.
        if path is None or (source_hash, path) in self.catalog.sources_of(chart_id):
            return
        with self.db.transaction():
            self.catalog.add_source(source_hash, chart_id, path)

    def source_files(self, chart_id: str) -> list[tuple[str, Path]]:
        """(content hash, path) of the files ``chart_id`` was made from, where last seen; a
        file may have moved or changed since (compare its hash)."""
        return [(digest, Path(path)) for digest, path in self.catalog.sources_of(chart_id)]

    def stats(self) -> StoreStats:
        by_source = dict(self.db.query("SELECT source, count(*) FROM charts GROUP BY source"))
        items = self.db.scalar("SELECT coalesce(sum(length(items)), 0) FROM fingerprints") // 4
        db_bytes = sum(p.stat().st_size for p in self.root.glob("store.sqlite3*"))
        chart_bytes = sum(p.stat().st_size for p in self.charts_dir.glob(f"*/*{SUFFIX}"))
        return StoreStats(charts=sum(by_source.values()), by_source=by_source,
                          fingerprint_items=int(items),
                          source_hashes=int(self.db.scalar("SELECT count(*) FROM sources")),
                          database_bytes=db_bytes, chart_bytes=chart_bytes, root=str(self.root))

    # -- identification ----------------------------------------------------------------------

    def identify(self, fp: Fingerprint) -> Match | None:
        """The stored chart ``fp`` (a few seconds of audio from anywhere in it) belongs to.

        Returns None when no chart matches well enough (an unknown song). Human charts win
        over generated ones for the same recording. Fast enough to call every second.
        """
        if fp.algorithm != ALGORITHM:
            return None
        return self.catalog.identify(fp.items)

    def close(self) -> None:
        self.db.close()


def _absolute(path: str | os.PathLike | None) -> str | None:
    """``path`` made absolute (not resolved through links: as the user named it), or None,
    also for a name that is not valid Unicode (bytes of another system's encoding), which the
    catalogue cannot hold as text: such a source file is simply not remembered."""
    if path is None:
        return None
    path = os.path.abspath(path)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return path

"""A small database layer shared by the local store and the chart server.

One SQL dialect for SQLite (``sqlite:///PATH``) and PostgreSQL (``postgresql://...``, psycopg 3):
queries use ``?`` placeholders; DDL may use ``{blob}`` and ``{serial}`` for the two column types
that differ. Schema changes are numbered :class:`Migration` s, each applied once in its own
transaction and recorded in ``schema_migrations``.

- :class:`Database` — ``execute``, ``query``, ``transaction``, ``migrate``;
- :class:`DatabaseError` — a URL this layer cannot open.

Connections are per thread (SQLite and psycopg connections must not be shared across threads
while in use). SQLite runs in WAL mode with a generous busy timeout, so several processes can
read and write one file at once.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Database", "DatabaseError", "Migration"]


class DatabaseError(RuntimeError):
    """The database URL is invalid or the database cannot be opened."""


@dataclass(frozen=True)
class Migration:
    """Schema step ``version`` (1, 2, ...): SQL statements separated by ``;``."""

    version: int
    description: str
    sql: str


_TYPES = {
    "sqlite": {"blob": "BLOB", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgresql": {"blob": "BYTEA", "serial": "BIGSERIAL PRIMARY KEY"},
}


class Database:
    """A SQLite file or a PostgreSQL database, reached by URL.

    Examples
    --------
    >>> db = Database("sqlite:///:memory:")
    >>> db.migrate([Migration(1, "t", "CREATE TABLE t (k TEXT PRIMARY KEY, v {blob})")])
    [1]
    >>> with db.transaction():
    ...     _ = db.execute("INSERT INTO t VALUES (?, ?)", ("a", b"1"))
    >>> db.query("SELECT v FROM t WHERE k = ?", ("a",))
    [(b'1',)]
    """

    def __init__(self, url: str, *, busy_timeout_s: float = 60.0):
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        if url.startswith("sqlite:///"):
            self.kind = "sqlite"
            self.path = url[len("sqlite:///"):]
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        elif url.startswith(("postgresql://", "postgres://")):
            self.kind = "postgresql"
            self.path = None
        else:
            raise DatabaseError(f"unsupported database URL {url!r}: use sqlite:///PATH or "
                                "postgresql://USER@HOST/DB")
        self._local = threading.local()
        self._memory_conn = None  # ":memory:" is one database only while one connection lives

    def _connect(self):
        if self.kind == "sqlite":
            if self.path == ":memory:" and self._memory_conn is not None:
                return self._memory_conn
            conn = None
            try:
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s,
                                       isolation_level=None,
                                       check_same_thread=self.path != ":memory:")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: safe against crashes
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError as error:  # not a database, unreadable, unwritable
                if conn is not None:
                    conn.close()
                raise DatabaseError(f"{self.path}: {error}") from None
            if self.path == ":memory:":
                self._memory_conn = conn
            return conn
        import psycopg
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as error:
            reason = " ".join(str(error).split())   # psycopg adds a hint on a second line
            raise DatabaseError(f"cannot connect to {self.url}: {reason}") from None

    @property
    def connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._local.depth = 0
        return conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.kind == "postgresql" else sql

    def execute(self, sql: str, params: tuple | list = ()):
        """Run one statement; returns the cursor (``rowcount``, ``fetchall``)."""
        return self.connection.execute(self._sql(sql), tuple(params))

    def query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """Rows of a SELECT as tuples."""
        return [tuple(row) for row in self.execute(sql, params).fetchall()]

    def scalar(self, sql: str, params: tuple | list = ()):
        """First column of the first row, or None."""
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    @contextlib.contextmanager
    def transaction(self):
        """All statements inside commit together or not at all. Nested uses join the outer one.

        SQLite takes the write lock at the start (BEGIN IMMEDIATE), so concurrent writers queue
        instead of failing halfway with "database is locked".
        """
        conn = self.connection
        if self._local.depth:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        self._local.depth = 1
        try:
            if self.kind == "sqlite":
                self._begin_sqlite(conn)
                try:
                    yield
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                with conn.transaction():
                    yield
        finally:
            self._local.depth = 0

    def _begin_sqlite(self, conn) -> None:
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:  # busy beyond sqlite's own timeout
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def migrate(self, migrations: list[Migration]) -> list[int]:
        """Apply the migrations not yet recorded, in order; returns the versions applied."""
        with self.transaction():
            if self.kind == "postgresql":  # several server workers may start at once
                self.execute("SELECT pg_advisory_xact_lock(7501)")
            self.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY "
                         "KEY, description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
            done = {row[0] for row in self.query("SELECT version FROM schema_migrations")}
            applied = []
            for migration in sorted(migrations, key=lambda m: m.version):
                if migration.version in done:
                    continue
                for statement in migration.sql.format(**_TYPES[self.kind]).split(";"):
                    if statement.strip():
                        self.execute(statement)
                self.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                             (migration.version, migration.description, time.time()))
                applied.append(migration.version)
        return applied

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn is not self._memory_conn:
            conn.close()
        self._local.conn = None

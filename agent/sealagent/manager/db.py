"""The manager's durable store: one SQLite file in WAL mode.

One connection, guarded by a :class:`trio.Lock`; every statement runs in a worker thread
(``trio.to_thread``) so the event loop never blocks on disk.  Each write is committed
before the call returns, so whatever the manager acknowledges afterwards is on disk.

The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` lists the
scripts that bring a database from one version to the next, applied in order on open.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import trio

from sealagent.errors import DatabaseError

T = TypeVar("T")
DB_FILE: Final = "manager.db"

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: sectors, their event log, tasks, workers, key/value metadata.
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE sectors (
        number     INTEGER PRIMARY KEY,
        state      TEXT NOT NULL,
        info       TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE sector_log (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        sector    INTEGER NOT NULL,
        at        REAL NOT NULL,
        kind      TEXT NOT NULL,
        message   TEXT NOT NULL
    );
    CREATE INDEX sector_log_by_sector ON sector_log (sector, id);
    CREATE TABLE tasks (
        task_id     TEXT PRIMARY KEY,
        seq         INTEGER NOT NULL UNIQUE,
        sector      INTEGER NOT NULL,
        task_type   TEXT NOT NULL,
        proof       INTEGER NOT NULL,
        priority    INTEGER NOT NULL,
        params      TEXT NOT NULL,
        state       TEXT NOT NULL,
        attempt     INTEGER NOT NULL,
        worker_id   TEXT,
        created_at  REAL NOT NULL,
        state_since REAL NOT NULL,
        started_at  REAL,
        finished_at REAL,
        result      TEXT,
        error       TEXT
    );
    CREATE INDEX tasks_by_state ON tasks (state);
    CREATE INDEX tasks_by_sector ON tasks (sector);
    CREATE TABLE workers (
        worker_id  TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        info       TEXT NOT NULL,
        last_seen  REAL NOT NULL
    );
    CREATE TABLE sector_blobs (
        sector INTEGER NOT NULL,
        name   TEXT NOT NULL,
        data   BLOB NOT NULL,
        PRIMARY KEY (sector, name)
    );
    """,
    # 2: agents bring their own identity; a name is only a label, and two agents may
    # share one.
    """
    CREATE TABLE workers_by_id (
        worker_id  TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        info       TEXT NOT NULL,
        last_seen  REAL NOT NULL
    );
    INSERT INTO workers_by_id SELECT worker_id, name, info, last_seen FROM workers;
    DROP TABLE workers;
    ALTER TABLE workers_by_id RENAME TO workers;
    """,
)
"""Schema scripts; index ``i`` upgrades a database from version ``i`` to ``i + 1``."""


def _connect(path: Path) -> sqlite3.Connection:
    """Open the file, switch to WAL and apply pending migrations (runs in a thread)."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                           timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        conn.close()
        raise DatabaseError(f"{path}: schema version {version} is newer than this "
                            f"sealagent understands ({len(MIGRATIONS)})")
    for index in range(version, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_script(MIGRATIONS[index]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {index + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            conn.close()
            raise
    return conn


def _split_script(script: str) -> list[str]:
    """Split a migration script into statements (no ``;`` inside our literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]


class Transaction:
    """The connection handed to a function run by :meth:`Database.transaction`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        return self._conn.execute(sql, params).rowcount

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT; returns the new row id."""
        rowid = self._conn.execute(sql, params).lastrowid
        return int(rowid or 0)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a SELECT and return every row."""
        return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """Run a SELECT and return its first row, or None."""
        row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def get_meta(self, key: str) -> Any:
        """A JSON value from the ``meta`` table, or None."""
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else json.loads(row["value"])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value in the ``meta`` table."""
        self.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                     (key, json.dumps(value)))


class Database:
    """The manager's SQLite store, used from Trio."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = trio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating and migrating as needed) the database at ``path``."""
        try:
            conn = await trio.to_thread.run_sync(_connect, path)
        except sqlite3.Error as exc:
            raise DatabaseError(f"{path}: {exc}") from None
        return cls(conn, path)

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    async def transaction(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn`` inside one committed transaction (all or nothing) and return its value.

        ``fn`` runs in a worker thread and must not touch Trio.  When it raises, the
        transaction is rolled back and the error propagates.
        """
        def run() -> T:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                value = fn(Transaction(self._conn))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return value

        async with self._lock:
            try:
                return await trio.to_thread.run_sync(run)
            except sqlite3.Error as exc:
                raise DatabaseError(f"{self.path}: {exc}") from None

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one SELECT and return its rows."""
        return await self.transaction(lambda tx: tx.query(sql, params))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one committed write; returns the number of rows it changed."""
        return await self.transaction(lambda tx: tx.execute(sql, params))

    async def aclose(self) -> None:
        """Close the connection (after waiting for the statement in flight)."""
        async with self._lock:
            await trio.to_thread.run_sync(self._conn.close)

"""SQLite access for the gateway, off the event loop.

One writer thread owns the only write connection: every write runs ``fn(conn)`` inside
``BEGIN IMMEDIATE … COMMIT`` (rolled back on any exception), so money-path transactions never
interleave and never deadlock on lock upgrades. Reads run on a small pool of reader threads, each
with its own connection (WAL lets them read while the writer commits). ``synchronous=FULL``: a
committed write survives power loss. A write that can be redone after a power cut may pass
``durable=False``: it commits with ``synchronous=NORMAL`` (no fsync of its own); WAL frames are
appended in order, so the next FULL commit (e.g. the ledger's hold or post that follows it) makes it
durable too — the order of writes survives power loss, only a tail of non-durable ones may not.
Migrations are plain SQL, numbered per domain, applied once
(recorded in ``_migrations``) through sqlite-utils.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from common.logging import get_logger

__all__ = ["Database", "Migration", "is_postgres_url", "open_database"]

T = TypeVar("T")
log = get_logger("gateway.db")


@dataclass(frozen=True)
class Migration:
    """One schema step: ``id`` is ``<domain>:<NNNN>-<what>``; ``sql`` is one or more statements.

    On PostgreSQL ``postgres_sql`` runs instead when given; otherwise ``sql`` with its column types
    translated (``gateway.lib.dialect.postgres_ddl``)."""

    id: str
    sql: str
    postgres_sql: str = ""


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves; check_same_thread off because each
    # connection is confined to one executor thread by construction.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def open_database(url: str, sqlite_path: Path) -> Database:
    """The gateway's database: PostgreSQL when ``url`` names it (``GATEWAY_DATABASE_URL``), else SQLite
    at ``sqlite_path``."""
    if is_postgres_url(url):
        from gateway.lib.pg import PostgresDatabase

        return PostgresDatabase(url)
    return Database(sqlite_path)


class Database:
    """The gateway's SQLite database: ``await db.write(fn)`` / ``await db.read(fn)``.

    ``dialect`` is ``"sqlite"`` here and ``"postgresql"`` for :class:`gateway.lib.pg.PostgresDatabase`,
    which keeps this API (the same ``fn(conn)`` bodies, ``?`` placeholders) on a shared server."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, readers: int = 4) -> None:
        self.replica_id = uuid.uuid4().hex  # this process's name in rows it leases (generations' lease_owner)
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        self._reader_pool = ThreadPoolExecutor(max_workers=max(1, readers), thread_name_prefix="db-reader")
        self._writer = _connect(path)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False

    # -- synchronous core (also used by CLI commands and tests that own the thread) --

    def write_sync(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction on the writer connection (caller's thread)."""
        conn = self._writer
        if not durable:
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if not durable:
                conn.execute("PRAGMA synchronous=FULL")
        return result

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    # -- asynchronous API --

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_pool, functools.partial(self.write_sync, fn, durable=durable))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool, self.read_sync, fn)

    async def replica_alive(self, replica_id: str) -> bool:
        """Whether the replica that leased a row still runs. One process owns a SQLite file, so only this
        one: rows leased by any other id were left by a process that exited."""
        return replica_id == self.replica_id

    async def keep_alive(self) -> None:
        """Make sure this replica is still seen alive (PostgreSQL: re-take the liveness lock after a lost
        connection); nothing to do on SQLite."""

    @contextlib.asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        """Hold the lock ``name`` for the block, across several transactions: here an in-process lock
        (one process owns a SQLite file); on PostgreSQL an advisory lock every replica shares."""
        locks: dict[str, asyncio.Lock] = self.__dict__.setdefault("_named_locks", {})
        async with locks.setdefault(name, asyncio.Lock()):
            yield

    def migrate(self, migrations: Sequence[Migration]) -> list[str]:
        """Apply the migrations not applied yet, in order; each in its own transaction. Returns the ids applied."""
        db = sqlite_utils.Database(self._writer)
        if "_migrations" not in db.table_names():
            self._writer.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL"
                " DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
            )
        done = {row["id"] for row in db["_migrations"].rows}
        applied: list[str] = []
        for migration in migrations:
            if migration.id in done:
                continue

            def step(conn: sqlite3.Connection, m: Migration = migration) -> None:
                for statement in _statements(m.sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO _migrations (id) VALUES (?)", (m.id,))

            self.write_sync(step)
            applied.append(migration.id)
            log.info("db_migration_applied", migration=migration.id)
        return applied

    def ping(self) -> None:
        """Raise when the database cannot answer a trivial query (for /health)."""
        self.read_sync(lambda conn: conn.execute("SELECT 1").fetchone())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        self._writer.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (no semicolons inside literals); a ``CREATE TRIGGER … BEGIN
    …; END`` stays one statement because pieces are joined until sqlite3 calls the text complete."""
    out: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                out.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        out.append(pending.strip())
    return out

"""``PostgresDatabase``: the gateway's :class:`gateway.lib.db.Database` API on a shared PostgreSQL server,
so that every replica sees the same sessions, rate-limit windows, webhook dedupe, generations.

Why threads and synchronous psycopg, not asyncio: every domain's SQL is a synchronous body ``fn(conn)``
run inside ``db.write`` / ``db.read``; keeping that shape lets one body run on both backends, where an
async driver would need every body twice. The bodies run on executor threads (never on the loop), each
call borrowing a connection from a psycopg-pool ``ConnectionPool``; unlike SQLite's single writer,
several writes run at once.

Why SERIALIZABLE (with retry), not row locks: on SQLite a write body runs under ``BEGIN IMMEDIATE``,
alone, so its read-modify-writes (a refresh token spent once, a dispute closed once, a generation
claimed once) are correct without locks. ``SERIALIZABLE`` gives every existing body exactly that
guarantee on PostgreSQL without auditing each one for the ``FOR UPDATE`` it would need; the price is a
serialization failure when two bodies really conflict, and the body is then run again (up to
``RETRIES`` times, with jittered backoff; likewise after a unique violation by a concurrent insert,
which a serial run would have read first). So a write body may run more than once: it must act only
through its connection (every body in the gateway does). The ledger, whose hot balance rows would make
SERIALIZABLE thrash, keeps its own row-locked implementation (``gateway.credits.postgres_tx``).

The connection a body gets is an adapter with sqlite3's surface: ``execute`` / ``executemany`` with
``?`` placeholders, cursors with ``fetchone`` / ``fetchall`` / ``rowcount`` / iteration, rows readable
by index and by column name. A unique or check violation is raised as ``sqlite3.IntegrityError``; as
PostgreSQL aborts the transaction on any error, a body that swallows one is rolled back and the write
fails (a portable body uses ``ON CONFLICT`` instead). ``durable=False`` commits with
``synchronous_commit=off`` (the server's WAL keeps order, as SQLite's ``synchronous=NORMAL`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import random
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

import psycopg
from psycopg import Connection
from psycopg.adapt import Loader
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool

from common.logging import get_logger
from gateway.lib.db import Database, Migration
from gateway.lib.dialect import postgres_ddl, postgres_placeholders

__all__ = ["PgConnection", "PostgresDatabase", "Row"]

T = TypeVar("T")
log = get_logger("gateway.db.postgres")
RETRIES = 12
UNIQUE_RETRIES = 3
LOCK_CONNECTIONS = 2  # connections kept for advisory locks held across transactions (``lock``)
CONNECT_TIMEOUT_S = 10.0
MIGRATION_LOCK = "creatorpass:migrations"  # the same advisory lock as the ledger's migrations
_RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)


class Row(tuple[Any, ...]):
    """A result row like ``sqlite3.Row``: ``row[0]``, ``row["name"]``, ``row.keys()``, ``dict(row)``."""

    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key])
            except KeyError:
                return tuple.__getitem__(self, self._index[key.lower()])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> RowMaker[Row]:
    names = [column.name for column in cursor.description or ()]
    row_type = type("Row", (Row,), {"_index": {name: i for i, name in enumerate(names)}})

    def make(values: Sequence[Any]) -> Row:
        return cast(Row, row_type(values))

    return make


class _NumericLoader(Loader):
    """``SUM`` of integers is ``numeric`` in PostgreSQL: load integral values as ``int`` (as SQLite
    returns them), the rest as ``float``, never ``Decimal``."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


def _params(params: Sequence[Any]) -> tuple[Any, ...]:
    # SQLite stores a bool in an INTEGER column as 0/1; PostgreSQL refuses boolean for bigint.
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


def _replica_key(replica_id: str) -> int:
    """A replica's advisory-lock key: 64 bits of a hash of its id (signed, as bigint keys are)."""
    return int.from_bytes(hashlib.blake2b(f"creatorpass:replica:{replica_id}".encode(), digest_size=8).digest(),
                          "big", signed=True)


class PgCursor:
    """A psycopg cursor behind sqlite3's cursor surface."""

    def __init__(self, cursor: psycopg.Cursor[Row]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> None:
        return None  # no rowid on PostgreSQL: portable SQL uses RETURNING

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class PgConnection:
    """A psycopg connection inside one transaction, behind sqlite3's connection surface."""

    def __init__(self, conn: Connection[Any]) -> None:
        self._conn = conn

    def _cursor(self) -> psycopg.Cursor[Row]:
        return self._conn.cursor(row_factory=_row_factory)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        cursor = self._cursor()
        try:
            cursor.execute(postgres_placeholders(sql), _params(params))
        except psycopg.errors.IntegrityError as exc:
            raise sqlite3.IntegrityError(str(exc)) from exc
        except psycopg.errors.InFailedSqlTransaction as exc:
            raise sqlite3.OperationalError("an earlier statement of this write failed and PostgreSQL aborted the"
                                           " transaction (write the body with ON CONFLICT instead)") from exc
        return PgCursor(cursor)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> PgCursor:
        cursor = self._cursor()
        try:
            cursor.executemany(postgres_placeholders(sql), [_params(p) for p in seq])
        except psycopg.errors.IntegrityError as exc:
            raise sqlite3.IntegrityError(str(exc)) from exc
        return PgCursor(cursor)


def _configure(conn: Connection[Any]) -> None:
    conn.adapters.register_loader("numeric", _NumericLoader)


class PostgresDatabase(Database):
    """:class:`gateway.lib.db.Database` on PostgreSQL (``GATEWAY_DATABASE_URL=postgresql://…``)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, writers: int = 8, readers: int = 4) -> None:
        # Not Database.__init__: no SQLite file. ``path`` is kept for callers that log it.
        self.url = url
        self.path = Path("")
        self._writer_pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="pg-writer")
        self._reader_pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="pg-reader")
        self._pool: ConnectionPool[Connection[Any]] = ConnectionPool(
            url, min_size=1, max_size=writers + readers + LOCK_CONNECTIONS, open=False, timeout=CONNECT_TIMEOUT_S,
            kwargs={"autocommit": True, "connect_timeout": int(CONNECT_TIMEOUT_S)}, configure=_configure,
        )
        self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        self.replica_id = uuid.uuid4().hex
        self._liveness = self._take_liveness()
        self._closed = False

    def _take_liveness(self) -> Connection[Any]:
        # Held for this process's life: the server drops it when the process dies (replica_alive).
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S))
        conn.execute("SELECT pg_advisory_lock(%s)", (_replica_key(self.replica_id),))
        return conn

    async def keep_alive(self) -> None:
        """Re-take the liveness lock when its connection was lost (a server restart): until then the
        other replicas see this one as dead and may take over its generations (the ledger still resolves
        each hold once, so nobody is charged twice)."""
        def check() -> None:
            try:
                self._liveness.execute("SELECT 1")
            except psycopg.OperationalError:
                log.warning("db_liveness_lost", replica=self.replica_id)
                with contextlib.suppress(Exception):
                    self._liveness.close()
                self._liveness = self._take_liveness()

        await asyncio.to_thread(check)

    async def replica_alive(self, replica_id: str) -> bool:
        """Whether the replica ``replica_id`` still runs: it holds its liveness lock until it dies (a
        killed process's session ends, and with it the lock), so a free lock means a dead replica."""
        if replica_id == self.replica_id:
            return True

        def probe() -> bool:
            with self._pool.connection() as conn:
                key = _replica_key(replica_id)
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if row is not None and row[0]:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                    return False
                return True

        return await asyncio.to_thread(probe)

    def _transaction(self, begin: str, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        with self._pool.connection() as conn:
            conn.execute(begin)
            try:
                if not durable:
                    conn.execute("SET LOCAL synchronous_commit = off")
                result = fn(cast(sqlite3.Connection, PgConnection(conn)))
                if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                    raise sqlite3.IntegrityError("a statement failed inside the transaction (rolled back)")
                conn.execute("COMMIT")
            except BaseException:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                raise
            return result

    def write_sync(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run ``fn`` in one SERIALIZABLE transaction; run it again after a serialization failure."""
        for attempt in range(RETRIES):
            try:
                return self._transaction("BEGIN ISOLATION LEVEL SERIALIZABLE", fn, durable=durable)
            except sqlite3.IntegrityError as exc:
                # A unique violation by a concurrent insert: run serially (SQLite) the body would have
                # read that row first, so it runs again and now reads it (a few times at most).
                racing_insert = isinstance(exc.__cause__, psycopg.errors.UniqueViolation) and attempt < UNIQUE_RETRIES
                if not (racing_insert or isinstance(exc.__cause__, _RETRYABLE)):
                    raise
                failure: BaseException = exc
            except _RETRYABLE as exc:
                failure = exc
            if attempt == RETRIES - 1:
                raise failure
            log.debug("db_write_retried", attempt=attempt + 1, error=type(failure).__name__)
            time.sleep(random.uniform(0.001, 0.004) * 2 ** min(attempt, 6))
        raise AssertionError("unreachable")

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on one snapshot (REPEATABLE READ, READ ONLY)."""
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", fn)

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_pool, functools.partial(self.write_sync, fn, durable=durable))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool, self.read_sync, fn)

    @contextlib.asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        """Hold the advisory lock ``name`` for the block, across replicas: a session lock on a connection
        of its own (released by the server if this process dies); waiters of this process queue on an
        in-process lock first, so they hold no connection while they wait."""
        async with super().lock(name):
            conn = await asyncio.to_thread(self._pool.getconn)
            try:
                await asyncio.to_thread(conn.execute, "SELECT pg_advisory_lock(hashtext(%s))", (name,))
                try:
                    yield
                finally:
                    await asyncio.to_thread(conn.execute, "SELECT pg_advisory_unlock(hashtext(%s))", (name,))
            finally:
                self._pool.putconn(conn)

    def migrate(self, migrations: Sequence[Migration]) -> list[str]:
        """Apply the migrations not applied yet, in order, under an advisory lock (replicas starting
        together apply each once); ``postgres_sql`` when a migration has one, else its translated ``sql``."""
        applied: list[str] = []
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS _migrations (id TEXT PRIMARY KEY,"
                         " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            done = {row[0] for row in conn.execute("SELECT id FROM _migrations").fetchall()}
            for migration in migrations:
                if migration.id in done:
                    continue
                sql = migration.postgres_sql or postgres_ddl(migration.sql)
                conn.execute(sql.encode())  # several statements: the simple query protocol
                conn.execute("INSERT INTO _migrations (id) VALUES (%s)", (migration.id,))
                applied.append(migration.id)
                log.info("db_migration_applied", migration=migration.id, backend="postgresql")
        return applied

    def ping(self) -> None:
        with self._pool.connection() as conn:
            conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        self._pool.close()
        self._liveness.close()

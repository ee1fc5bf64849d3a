"""``PostgresLedger``: the ledger on PostgreSQL (replicas), chosen by ``GATEWAY_DATABASE_URL=postgresql://…``.

psycopg 3 (async) over a psycopg-pool connection pool. Every write body of ``gateway.credits.postgres_tx``
runs in one ``READ COMMITTED`` transaction (row locks decide concurrency; the module docstring says
why); a commit is durable under PostgreSQL's default ``synchronous_commit=on``. Reads run in autocommit
(one statement, one snapshot); ``reconcile`` runs every query in one ``REPEATABLE READ READ ONLY``
transaction. A deadlock or serialization failure, which the lock order is designed to prevent, is
retried a bounded number of times: every body is idempotent, so a retry is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from common.logging import get_logger
from gateway.credits import postgres_tx as tx
from gateway.credits.postgres_schema import POSTGRES_MIGRATIONS
from gateway.credits.reconcile import QUERIES
from gateway.credits.results import RetryTransaction
from gateway.credits.service import LedgerService
from gateway.lib.db import Migration

__all__ = ["POOL_MAX", "PostgresLedger", "migrate"]

log = get_logger("gateway.credits.postgres")
POOL_MIN = 1
POOL_MAX = 10  # connections per gateway process; PostgreSQL's default max_connections is 100
RETRIES = 5
CONNECT_TIMEOUT_S = 10.0
_TRANSIENT = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure, RetryTransaction)


async def _overdue_holds(conn: AsyncConnection[Any], *, cutoff: float) -> int:
    cur = await conn.execute("SELECT COUNT(*) FROM credit_holds WHERE state = 'pending' AND expires_at <= %s",
                             (cutoff,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


_READS: dict[str, Callable[..., Any]] = {
    "balance": tx.balance, "get_hold": tx.get_hold, "outbox": tx.outbox, "outbox_depth": tx.outbox_depth,
    "overdue_holds": _overdue_holds,
}


async def migrate(conn: AsyncConnection[Any], migrations: list[Migration] = POSTGRES_MIGRATIONS) -> list[str]:
    """Apply the migrations not applied yet, each in its own transaction, under an advisory lock so that
    replicas starting together apply each once."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('creatorpass:migrations'))")
        await conn.execute("CREATE TABLE IF NOT EXISTS _migrations (id TEXT PRIMARY KEY,"
                           " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        cur = await conn.execute("SELECT id FROM _migrations")
        done = {r[0] for r in await cur.fetchall()}
        for migration in migrations:
            if migration.id in done:
                continue
            await conn.execute(migration.sql.encode())  # several statements: the simple query protocol
            await conn.execute("INSERT INTO _migrations (id) VALUES (%s)", (migration.id,))
            applied.append(migration.id)
            log.info("db_migration_applied", migration=migration.id, backend="postgresql")
    return applied


class PostgresLedger(LedgerService):
    """The :class:`gateway.credits.ledger.Ledger` contract on PostgreSQL.

    A psycopg pool belongs to the event loop that opened it, so the ledger keeps one pool per loop,
    opened on first use in that loop (the gateway has one loop; test clients run the app's lifespan on
    a second one, and the CLI on its own)."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time, max_size: int = POOL_MAX) -> None:
        super().__init__(clock=clock)
        self.url = url
        self.max_size = max_size
        self._pools: dict[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool[AsyncConnection[Any]]]] = {}

    @classmethod
    async def open(cls, url: str, *, clock: Callable[[], float] = time.time, max_size: int = POOL_MAX,
                   run_migrations: bool = True) -> PostgresLedger:
        """Connect (failing fast when the server cannot be reached) and apply the ledger's migrations."""
        ledger = cls(url, clock=clock, max_size=max_size)
        pool = await ledger.pool()
        if run_migrations:
            async with pool.connection() as conn:
                await migrate(conn)
        return ledger

    async def _open_pool(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            self.url, min_size=POOL_MIN, max_size=self.max_size, open=False, timeout=CONNECT_TIMEOUT_S,
            kwargs={"autocommit": True, "connect_timeout": int(CONNECT_TIMEOUT_S)},
        )
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        return pool

    async def pool(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        """This event loop's pool (opened once per loop, even when many callers ask at once)."""
        loop = asyncio.get_running_loop()
        task = self._pools.get(loop)
        if task is None or (task.done() and task.exception() is not None):
            task = self._pools[loop] = loop.create_task(self._open_pool())
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Close every loop's pool: this loop's here; another running loop's is handed to that loop
        (never waited on: that loop's thread may be the one blocked waiting for this shutdown)."""
        current = asyncio.get_running_loop()
        for loop, task in list(self._pools.items()):
            del self._pools[loop]
            if loop is current and not task.done():
                # Still opening (a caller was cancelled mid-open): let it finish (bounded by its connect
                # timeout) and close it, or a pool nobody owns keeps its worker tasks alive.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(task), CONNECT_TIMEOUT_S + 1)
            if not task.done() or task.cancelled() or task.exception() is not None:
                continue
            pool = task.result()
            if loop is current:
                await pool.close()
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(pool.close(), loop)

    async def _run_write(self, body: str, /, **kwargs: Any) -> Any:
        run = getattr(tx, body)
        for attempt in range(RETRIES):
            try:
                async with (await self.pool()).connection() as conn, conn.transaction():
                    return await run(conn, **kwargs)
            except _TRANSIENT as exc:
                if attempt == RETRIES - 1:
                    raise
                log.info("credit_transaction_retried", body=body, attempt=attempt + 1, error=type(exc).__name__)
                await asyncio.sleep(0.005 * 2**attempt)
        raise AssertionError("unreachable")

    async def _read(self, body: str, /, **kwargs: Any) -> Any:
        async with (await self.pool()).connection() as conn:
            return await _READS[body](conn, **kwargs)

    async def _reconcile_rows(self) -> dict[str, Any]:
        async with (await self.pool()).connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            rows: dict[str, Any] = {}
            for name, sql in QUERIES.items():
                cur = await conn.execute(sql)
                rows[name] = await cur.fetchall()
            return rows

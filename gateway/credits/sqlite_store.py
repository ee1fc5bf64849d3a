"""``SqliteLedger``: the ledger on the gateway's SQLite database (the embedded default).

Every write body of ``gateway.credits.sqlite_tx`` runs through ``db.write`` (the single writer thread,
``BEGIN IMMEDIATE``, WAL, ``synchronous=FULL``: a method that returned has committed durably); reads
go through ``db.read`` (query-only reader threads, one snapshot each).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from gateway.credits import sqlite_tx as tx
from gateway.credits.reconcile import QUERIES
from gateway.credits.service import LedgerService
from gateway.lib.db import Database

__all__ = ["SqliteLedger"]


def _overdue_holds(conn: sqlite3.Connection, *, cutoff: float) -> int:
    row = conn.execute("SELECT COUNT(*) FROM credit_holds WHERE state = 'pending' AND expires_at <= ?",
                       (cutoff,)).fetchone()
    return int(row[0])


def _reconcile_rows(conn: sqlite3.Connection) -> dict[str, Any]:
    return {name: conn.execute(sql).fetchall() for name, sql in QUERIES.items()}


_READS: dict[str, Callable[..., Any]] = {
    "balance": tx.balance, "get_hold": tx.get_hold, "outbox": tx.outbox, "outbox_depth": tx.outbox_depth,
    "overdue_holds": _overdue_holds,
}


class SqliteLedger(LedgerService):
    """The :class:`gateway.credits.ledger.Ledger` contract on SQLite."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        self.db = db

    async def _run_write(self, body: str, /, **kwargs: Any) -> Any:
        return await self.db.write(partial(getattr(tx, body), **kwargs))

    async def _read(self, body: str, /, **kwargs: Any) -> Any:
        return await self.db.read(partial(_READS[body], **kwargs))

    async def _reconcile_rows(self) -> dict[str, Any]:
        return await self.db.read(_reconcile_rows)

"""A raw connection to a ledger's database, whichever backend, for writing behind the ledger's back."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.service import LedgerService
from gateway.credits.sqlite_store import SqliteLedger

__all__ = ["REFUSED", "Raw"]

REFUSED = (sqlite3.IntegrityError, psycopg.IntegrityError)


class Raw:
    """One raw autocommit connection to the ledger's database, whichever backend it is."""

    def __init__(self, ledger: LedgerService) -> None:
        if isinstance(ledger, SqliteLedger):
            self.conn: Any = sqlite3.connect(ledger.db.path, isolation_level=None)
        else:
            assert isinstance(ledger, PostgresLedger)
            self.conn = psycopg.connect(ledger.url, autocommit=True)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if isinstance(self.conn, sqlite3.Connection):
            return self.conn.execute(sql, params)
        return self.conn.execute(sql.replace("?", "%s").encode(), params or None)

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def close(self) -> None:
        self.conn.close()

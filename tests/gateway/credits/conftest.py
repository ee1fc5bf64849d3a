"""Fixtures for the ledger tests: a migrated SQLite database, a clock the test moves, the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.credits.schema import MIGRATIONS
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database


class FakeClock:
    """Unix seconds that only move when the test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def open_db(path: Path) -> Database:
    db = Database(path)
    db.migrate(MIGRATIONS)
    return db


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_db(tmp_path / "ledger.sqlite3")
    yield database
    database.close()


@pytest.fixture
def ledger(db: Database, clock: FakeClock) -> SqliteLedger:
    return SqliteLedger(db, clock=clock)

"""Fixtures for the ledger tests: a clock the test moves, a migrated SQLite database, and ``ledger``,
parameterised over both backends (SQLite, and PostgreSQL on a real server started once per session;
each PostgreSQL test gets its own schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.schema import MIGRATIONS
from gateway.credits.service import LedgerService
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database
from tests.gateway.credits.pg_server import PostgresServer

BACKENDS = ("sqlite", "postgres")


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
def sqlite_ledger(db: Database, clock: FakeClock) -> SqliteLedger:
    return SqliteLedger(db, clock=clock)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


MakeLedger = Callable[[str], Awaitable[LedgerService]]


@pytest.fixture
async def make_ledger(request: pytest.FixtureRequest, clock: FakeClock,
                      tmp_path: Path) -> AsyncIterator[MakeLedger]:
    """``await make_ledger("sqlite" | "postgres")`` → a fresh ledger on that backend, closed at teardown."""
    opened: list[LedgerService] = []
    databases: list[Database] = []

    async def make(backend: str) -> LedgerService:
        if backend == "sqlite":
            databases.append(open_db(tmp_path / f"ledger{len(databases)}.sqlite3"))
            opened.append(SqliteLedger(databases[-1], clock=clock))
        else:
            server: PostgresServer = request.getfixturevalue("pg_server")
            opened.append(await PostgresLedger.open(server.new_schema(), clock=clock, max_size=20))
        return opened[-1]

    yield make
    for ledger in opened:
        if isinstance(ledger, PostgresLedger):
            await ledger.close()
    for database in databases:
        database.close()


@pytest.fixture(params=BACKENDS)
async def ledger(request: pytest.FixtureRequest, make_ledger: MakeLedger) -> LedgerService:
    return await make_ledger(request.param)

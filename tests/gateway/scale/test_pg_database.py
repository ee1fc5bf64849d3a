"""``PostgresDatabase`` on a real PostgreSQL server: the sqlite3-shaped surface, SERIALIZABLE writes that
keep a read-modify-write correct across two "replicas" (two databases on one server), the advisory
lock, replica liveness, and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Iterator

import psycopg
import pytest

from gateway.lib.db import Migration
from gateway.lib.pg import PostgresDatabase
from tests.gateway.credits.pg_server import PostgresServer

SCHEMA = [Migration("t:0001", "CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL, at REAL NOT NULL,"
                               " blob BLOB, UNIQUE (n, at))")]


@pytest.fixture
def replicas(pg_server: PostgresServer) -> Iterator[tuple[PostgresDatabase, PostgresDatabase]]:
    url = pg_server.new_schema()
    first, second = PostgresDatabase(url), PostgresDatabase(url)
    assert first.migrate(SCHEMA) == ["t:0001"] and second.migrate(SCHEMA) == []  # applied once
    yield first, second
    first.close()
    second.close()


def test_the_sqlite_shaped_surface(replicas: tuple[PostgresDatabase, PostgresDatabase]) -> None:
    db, _ = replicas
    def write(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO counters (name, n, at, blob) VALUES (?, ?, ?, ?)", ("a", 2**40, 1764660000.123456,
                                                                                     b"\x00\xff"))
        conn.executemany("INSERT INTO counters (name, n, at) VALUES (?, ?, ?)", [("b", 1, 1.0), ("c", True, 2.0)])
        return conn.execute("UPDATE counters SET n = n + 1 WHERE name IN ('b', 'c')").rowcount

    assert db.write_sync(write) == 2
    row = db.read_sync(lambda c: c.execute("SELECT name, n, at, blob FROM counters WHERE name = ?", ("a",)).fetchone())
    assert row is not None and row[0] == "a" and row["n"] == 2**40  # BIGINT, by index and by name
    assert row["at"] == 1764660000.123456 and row["blob"] == b"\x00\xff"  # DOUBLE PRECISION, BYTEA
    assert dict(row) == {"name": "a", "n": 2**40, "at": 1764660000.123456, "blob": b"\x00\xff"}
    total = db.read_sync(lambda c: c.execute("SELECT SUM(n) FROM counters WHERE name <> 'a'").fetchone())
    assert total is not None and total[0] == 4 and type(total[0]) is int  # numeric SUM loaded as int
    assert db.read_sync(lambda c: [r["name"] for r in c.execute("SELECT name FROM counters ORDER BY name")]) == [
        "a", "b", "c"]
    assert db.read_sync(lambda c: c.execute("SELECT '50% of ?' AS t").fetchone())["t"] == "50% of ?"  # literals kept


def test_a_swallowed_violation_fails_the_write(replicas: tuple[PostgresDatabase, PostgresDatabase]) -> None:
    db, _ = replicas
    db.write_sync(lambda c: c.execute("INSERT INTO counters (name, n, at) VALUES ('x', 1, 1)"))

    def swallow(conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.IntegrityError):  # fine on SQLite; PostgreSQL aborts the transaction
            conn.execute("INSERT INTO counters (name, n, at) VALUES ('x', 1, 1)")
        conn.execute("INSERT INTO counters (name, n, at) VALUES ('y', 2, 2)")

    with pytest.raises(sqlite3.OperationalError, match="aborted the transaction"):
        db.write_sync(swallow)
    assert db.read_sync(lambda c: c.execute("SELECT COUNT(*) FROM counters").fetchone()[0]) == 1


def test_read_modify_writes_from_two_replicas_lose_nothing(
        replicas: tuple[PostgresDatabase, PostgresDatabase]) -> None:
    first, second = replicas
    first.write_sync(lambda c: c.execute("INSERT INTO counters (name, n, at) VALUES ('hits', 0, 0)"))

    def increment(conn: sqlite3.Connection) -> None:  # read, then write what was read + 1 (no lock taken)
        n = conn.execute("SELECT n FROM counters WHERE name = 'hits'").fetchone()[0]
        conn.execute("UPDATE counters SET n = ? WHERE name = 'hits'", (n + 1,))

    def hammer(db: PostgresDatabase) -> None:
        for _ in range(40):
            db.write_sync(increment)

    threads = [threading.Thread(target=hammer, args=(db,)) for db in (first, second, first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert first.read_sync(lambda c: c.execute("SELECT n FROM counters WHERE name = 'hits'").fetchone()[0]) == 160


async def test_the_lock_holds_across_replicas(replicas: tuple[PostgresDatabase, PostgresDatabase]) -> None:
    first, second = replicas
    inside: list[str] = []

    async def critical(db: PostgresDatabase, tag: str) -> None:
        async with db.lock("test:critical"):
            inside.append(f"{tag}+")
            await asyncio.sleep(0.2)
            inside.append(f"{tag}-")

    await asyncio.gather(critical(first, "a"), critical(second, "b"), critical(first, "c"))
    assert all(inside[i][0] == inside[i + 1][0] for i in range(0, len(inside), 2)), inside  # never interleaved


async def test_replica_liveness(pg_server: PostgresServer,
                                replicas: tuple[PostgresDatabase, PostgresDatabase]) -> None:
    first, second = replicas
    assert await first.replica_alive(second.replica_id) and await second.replica_alive(first.replica_id)
    assert not await first.replica_alive("never-ran")
    # A lost liveness connection (e.g. a server restart) is noticed and the lock taken again.
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        pid = second._liveness.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    async with asyncio.timeout(30):  # the backend exits (and its lock goes) just after the signal
        while await first.replica_alive(second.replica_id):
            await asyncio.sleep(0.05)
    await second.keep_alive()
    assert await first.replica_alive(second.replica_id)
    third = PostgresDatabase(first.url)
    gone = third.replica_id
    third.close()  # a replica that stopped
    async with asyncio.timeout(30):  # its backend exits (and the lock goes) just after the connection closes
        while await first.replica_alive(gone):
            await asyncio.sleep(0.05)

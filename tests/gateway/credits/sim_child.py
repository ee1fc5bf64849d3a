"""Child process of the crash simulation: ``python -m tests.gateway.credits.sim_child SPEC.json``.

Runs ``ops[start:]`` on a real SqliteLedger over the database at ``db`` (or a PostgresLedger on
``url`` when ``backend`` is ``postgres``), appending one JSON line per
finished operation to ``acks`` (its index and outcome). When it reaches operation ``crash.index`` it
SIGKILLs itself inside that operation's write: just before statement ``crash.statement`` of the
transaction (or before COMMIT when the transaction has fewer), or right after COMMIT when
``crash.point`` is ``after_commit``. The line it writes just before dying names the phase, so the
parent knows whether the interrupted transaction committed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gateway.credits import postgres_tx
from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database
from tests.gateway.credits.sim import apply_to_ledger

T = TypeVar("T")


class _CountingConnection:
    """Forwards to the real connection, calling ``tick`` before every statement."""

    def __init__(self, conn: Any, tick: Callable[[], None]) -> None:
        self._conn, self._tick = conn, tick

    def execute(self, *args: Any) -> Any:
        self._tick()
        return self._conn.execute(*args)

    def executemany(self, *args: Any) -> Any:
        self._tick()
        return self._conn.executemany(*args)


class _AsyncCountingConnection:
    """The psycopg flavour: ``execute`` and ``cursor`` (settle_burn's executemany) tick first."""

    def __init__(self, conn: Any, tick: Callable[[], None]) -> None:
        self._conn, self._tick = conn, tick

    async def execute(self, *args: Any) -> Any:
        self._tick()
        return await self._conn.execute(*args)

    def cursor(self) -> Any:
        self._tick()
        return self._conn.cursor()


def _die(acks: Any, phase: str) -> None:
    acks.write(json.dumps({"crash": phase}) + "\n")
    acks.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class CrashingPostgresLedger(PostgresLedger):
    """Kills the process inside an armed write's transaction, like ``CrashingDatabase`` for SQLite."""

    acks: Any = None
    armed: dict[str, Any] | None = None

    async def _run_write(self, body: str, /, **kwargs: Any) -> Any:
        crash = self.armed
        if crash is None:
            return await super()._run_write(body, **kwargs)
        statements = [0]

        def tick() -> None:
            if crash["point"] == "statement" and statements[0] == crash["statement"]:
                _die(self.acks, "mid_transaction")
            statements[0] += 1

        try:
            async with (await self.pool()).connection() as conn, conn.transaction():
                result = await getattr(postgres_tx, body)(_AsyncCountingConnection(conn, tick), **kwargs)
                if crash["point"] == "statement":
                    _die(self.acks, "before_commit")
        except Exception:
            _die(self.acks, "rolled_back")
            raise
        _die(self.acks, "after_commit")
        return result


class CrashingDatabase(Database):
    def __init__(self, path: Path, acks: Any) -> None:
        super().__init__(path)
        self.acks = acks
        self.armed: dict[str, Any] | None = None

    def die(self, phase: str) -> None:
        _die(self.acks, phase)

    def write_sync(self, fn: Callable[[Any], T], **options: Any) -> T:
        crash = self.armed
        if crash is None:
            return super().write_sync(fn, **options)
        statements = [0]

        def tick() -> None:
            if crash["point"] == "statement" and statements[0] == crash["statement"]:
                self.die("mid_transaction")
            statements[0] += 1

        def body(conn: Any) -> T:
            result = fn(_CountingConnection(conn, tick))
            if crash["point"] == "statement":
                self.die("before_commit")
            return result

        try:
            result = super().write_sync(body, **options)
        except BaseException:
            self.die("rolled_back")
            raise
        self.die("after_commit")
        return result


async def _run(spec: dict[str, Any]) -> None:
    now = [0.0]
    with open(spec["acks"], "a", encoding="utf-8") as acks:
        target: Any
        if spec.get("backend") == "postgres":
            target = ledger = CrashingPostgresLedger(spec["url"], clock=lambda: now[0], max_size=2)
            ledger.acks = acks
        else:
            target = CrashingDatabase(Path(spec["db"]), acks)
            ledger = SqliteLedger(target, clock=lambda: now[0])
        crash = spec.get("crash")
        for index in range(spec["start"], len(spec["ops"])):
            op = spec["ops"][index]
            now[0] = op["now"]
            if crash is not None and index == crash["index"]:
                target.armed = crash
            outcome = await apply_to_ledger(ledger, op)
            acks.write(json.dumps({"i": index, "outcome": outcome}) + "\n")
            acks.flush()
        if isinstance(ledger, PostgresLedger):
            await ledger.close()
        else:
            target.close()


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    asyncio.run(_run(spec))


if __name__ == "__main__":
    main()

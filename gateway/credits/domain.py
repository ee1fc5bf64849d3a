"""Credits domain: the ledger service, its hold sweeper, health and metrics. No HTTP routes of its own
(accounts, billing and generations expose balances and holds through their endpoints)."""

from __future__ import annotations

import asyncio
from typing import Any

from common.logging import get_logger
from gateway.credits.ledger import Ledger
from gateway.credits.postgres_schema import POSTGRES_MIGRATIONS  # what all_migrations("postgresql") applies
from gateway.credits.schema import MIGRATIONS
from gateway.credits.sqlite_store import SqliteLedger
from gateway.server.container import Container, HealthResult

__all__ = ["MIGRATIONS", "POSTGRES_MIGRATIONS", "ROUTES", "install", "is_postgres_url", "open_ledger", "sweep_once"]

log = get_logger("gateway.credits")
ROUTES: list[Any] = []
SWEEP_BATCH = 1000
SWEEP_ROUNDS_MAX = 100  # at most this many batches per tick, so one tick stays bounded
# A pending hold this many sweep intervals past its expiry means the sweeper is not keeping up.
OVERDUE_INTERVALS = 10


async def sweep_once(ledger: Ledger) -> int:
    """Void every expired hold (in batches of ``SWEEP_BATCH``) and refresh the outbox gauge."""
    total = 0
    for _ in range(SWEEP_ROUNDS_MAX):
        voided = await ledger.void_expired(limit=SWEEP_BATCH)
        total += voided
        if voided < SWEEP_BATCH:
            break
    outbox_depth = getattr(ledger, "outbox_depth", None)
    if outbox_depth is not None:
        await outbox_depth()
    if total:
        log.info("credit_holds_expired", voided=total)
    return total


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


async def open_ledger(container: Container) -> Ledger:
    """PostgreSQL when ``GATEWAY_DATABASE_URL`` names it (its pool closed at shutdown), else the SQLite
    ledger on the gateway's own database."""
    url = container.settings.database_url
    if not is_postgres_url(url):
        return SqliteLedger(container.db)
    from gateway.credits.postgres_store import PostgresLedger

    ledger = await PostgresLedger.open(url)
    container.on_shutdown(ledger.close)
    log.info("credit_ledger_backend", backend="postgresql")
    return ledger


async def install(container: Container) -> None:
    ledger = container.find(Ledger)  # type: ignore[type-abstract]
    if ledger is None:
        ledger = container.provide(Ledger, await open_ledger(container))  # type: ignore[type-abstract]
    interval_s = container.settings.sweep_interval_s

    async def sweeper() -> None:
        while True:
            await sweep_once(ledger)
            await asyncio.sleep(interval_s)

    async def health() -> HealthResult:
        overdue_holds = getattr(ledger, "overdue_holds", None)
        if overdue_holds is None:
            return HealthResult(True, "ok")
        overdue = await overdue_holds(grace_s=interval_s * OVERDUE_INTERVALS)
        if overdue:
            return HealthResult(True, f"{overdue} expired holds not swept", degraded=True)
        return HealthResult(True, "ok")

    container.add_background_task("credit-hold-sweeper", sweeper)
    container.add_health_check("credits", health)

"""The credits domain inside the real app: Ledger provided (unless pre-provided), the sweeper task voids
expired holds, /health reports a stuck sweeper, /metrics carries the ledger's series."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from gateway.credits.domain import install, sweep_once
from gateway.credits.ledger import Ledger
from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database
from gateway.server.container import Container
from gateway.server.core import build_app
from gateway.server.domains import all_migrations
from gateway.settings import GatewaySettings
from tests.gateway.credits.conftest import FakeClock
from tests.gateway.credits.pg_server import PostgresServer


def _settings(tmp_path: Path, **overrides: Any) -> GatewaySettings:
    return GatewaySettings(state_dir=tmp_path, log_json=False, **{"sweep_interval_s": 0.05, **overrides})


async def _wait_for(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_the_app_sweeps_expired_holds_and_exports_metrics(tmp_path: Path) -> None:
    built = await build_app(_settings(tmp_path))
    ledger = built.container.get(Ledger)  # type: ignore[type-abstract]
    assert isinstance(ledger, SqliteLedger)
    async with AsyncTestClient(app=built.app) as client:
        await ledger.credit_purchase(user_id="u1", credits=2, key="stripe:pi:1")
        await ledger.hold(user_id="u1", generation_id="g1", timeout_s=0.05)
        await ledger.hold(user_id="u1", generation_id="g2", timeout_s=300)
        await ledger.post("g2")

        async def swept() -> bool:
            hold = await ledger.get_hold("g1")
            return hold is not None and hold.state == "voided"

        await _wait_for(swept)
        assert (await ledger.get_hold("g1")).reason == "expired"  # type: ignore[union-attr]
        health = (await client.get("/health")).json()
        assert health["checks"]["credits"] == {"ok": True, "degraded": False, "detail": "ok"}
        metrics = (await client.get("/metrics")).text
        assert 'gateway_credit_voids_total{reason="expired"}' in metrics
        assert 'gateway_credit_posts_total{result="posted"}' in metrics
        assert "gateway_credit_outbox_depth 1.0" in metrics


async def test_install_keeps_a_provided_ledger_and_health_sees_a_stuck_sweeper(tmp_path: Path) -> None:
    settings = _settings(tmp_path, sweep_interval_s=1.0)
    db = Database(settings.sqlite_path)
    db.migrate(all_migrations())
    clock = FakeClock(time.time())
    provided = SqliteLedger(db, clock=clock)
    container = Container(settings=settings, db=db)
    container.provide(Ledger, provided)  # type: ignore[type-abstract]
    await install(container)
    assert container.get(Ledger) is provided  # type: ignore[type-abstract]
    await provided.credit_purchase(user_id="u1", credits=1, key="stripe:pi:1")
    await provided.hold(user_id="u1", generation_id="g1", timeout_s=1)
    clock.advance(60)  # 59 s overdue > 10 sweep intervals, and no sweeper task was started
    health = await container.health_checks["credits"]()
    assert health.ok and health.degraded and "1 expired holds" in health.detail
    assert await sweep_once(provided) == 1
    assert not (await container.health_checks["credits"]()).degraded
    db.close()


async def test_the_app_on_postgres(tmp_path: Path, pg_server: PostgresServer) -> None:
    built = await build_app(_settings(tmp_path, database_url=pg_server.new_schema()))
    ledger = built.container.get(Ledger)  # type: ignore[type-abstract]
    assert isinstance(ledger, PostgresLedger)
    async with AsyncTestClient(app=built.app):
        await ledger.credit_purchase(user_id="u1", credits=1, key="stripe:pi:1")
        await ledger.hold(user_id="u1", generation_id="g1", timeout_s=0.05)

        async def swept() -> bool:
            hold = await ledger.get_hold("g1")
            return hold is not None and hold.state == "voided"

        await _wait_for(swept)
        assert (await ledger.balance("u1")).available == 1
    assert not ledger._pools  # the shutdown hook closed the pools

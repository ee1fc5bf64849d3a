"""System domain: ``/health`` (database + every registered dependency) and ``/metrics``."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from gateway.lib.db import Migration
from gateway.server.container import Container, HealthResult

__all__ = ["MIGRATIONS", "ROUTES", "SystemController", "install"]

MIGRATIONS: list[Migration] = []
HEALTH_CHECK_TIMEOUT_S = 3.0


async def install(container: Container) -> None:
    async def database() -> HealthResult:
        await container.db.read(lambda conn: conn.execute("SELECT 1").fetchone())
        return HealthResult(True, "ok")

    container.add_health_check("database", database)


async def _run_check(name: str, check: Any) -> tuple[str, HealthResult]:
    try:
        result = await asyncio.wait_for(check(), HEALTH_CHECK_TIMEOUT_S)
    except TimeoutError:
        result = HealthResult(False, f"no answer within {HEALTH_CHECK_TIMEOUT_S:g} s")
    except Exception as exc:
        result = HealthResult(False, f"{type(exc).__name__}: {exc}"[:300])
    return name, result


class SystemController(Controller):
    tags = ["system"]

    @get("/health", summary="Health of the gateway and each dependency (200 healthy or degraded, 503 down)")
    async def health(self, state: State) -> Response[dict[str, Any]]:
        container: Container = state.container
        results = await asyncio.gather(*(_run_check(n, c) for n, c in container.health_checks.items()))
        checks = {
            name: {"ok": r.ok, "degraded": r.degraded, "detail": r.detail} for name, r in results
        }
        ok = all(r.ok for _, r in results)
        degraded = any(r.degraded for _, r in results)
        status = "down" if not ok else ("degraded" if degraded else "ok")
        # ``replica``: which process answered (behind a load balancer; the id its leases carry in the database)
        return Response({"status": status, "checks": checks, "replica": container.db.replica_id},
                        status_code=200 if ok else 503)

    @get("/metrics", summary="Prometheus metrics", include_in_schema=False, media_type=CONTENT_TYPE_LATEST)
    async def metrics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


ROUTES = [SystemController]

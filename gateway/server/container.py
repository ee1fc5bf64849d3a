"""The service container: what the gateway's domains build at start and look up while serving.

Each domain has an ``install(container)`` coroutine (see ``gateway.server.domains``) that builds its
services from the settings and the services installed before it, registers them by type with
``provide``, and may add health checks, background tasks and shutdown hooks. Controllers reach the
services through Litestar dependencies that call ``container.get(ServiceType)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from common.logging import get_logger
from gateway.lib.db import Database
from gateway.settings import GatewaySettings

__all__ = ["Container", "HealthResult"]

T = TypeVar("T")
log = get_logger("gateway.container")


@dataclass(frozen=True)
class HealthResult:
    """One dependency's health: ``ok`` False makes /health 503; ``degraded`` keeps 200 but says so."""

    ok: bool
    detail: str = ""
    degraded: bool = False


HealthCheck = Callable[[], Awaitable[HealthResult]]


@dataclass
class Container:
    settings: GatewaySettings
    db: Database
    _services: dict[type[Any], Any] = field(default_factory=dict)
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    _task_factories: list[tuple[str, Callable[[], Awaitable[None]]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def provide(self, kind: type[T], service: T) -> T:
        if kind in self._services:
            raise RuntimeError(f"{kind.__name__} is provided twice")
        self._services[kind] = service
        return service

    def get(self, kind: type[T]) -> T:
        try:
            return self._services[kind]  # type: ignore[no-any-return]
        except KeyError:
            raise RuntimeError(f"{kind.__name__} was not installed") from None

    def find(self, kind: type[T]) -> T | None:
        return self._services.get(kind)

    def add_health_check(self, name: str, check: HealthCheck) -> None:
        self.health_checks[name] = check

    def add_background_task(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        """A long-running coroutine started with the app; cancelled at shutdown; restarted if it crashes."""
        self._task_factories.append((name, factory))

    def on_shutdown(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._shutdown.append(hook)

    async def start(self) -> None:
        for name, factory in self._task_factories:
            self._tasks.append(asyncio.create_task(self._supervise(name, factory), name=f"gateway:{name}"))

    async def _supervise(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        delay_s = 0.5
        while True:
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway_background_task_crashed", task=name, restart_in_s=delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 30.0)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for hook in reversed(self._shutdown):
            try:
                await hook()
            except Exception:
                log.exception("gateway_shutdown_hook_failed")
        self.db.close()

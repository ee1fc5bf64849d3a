"""The gateway's domains, in install order (a domain may use the services of those before it).

Each ``gateway.<name>.domain`` module has:

- ``MIGRATIONS: Sequence[Migration]`` — its tables, applied once, in this order;
- ``async def install(container) -> None`` — builds and ``provide``s its services;
- ``ROUTES: Sequence[ControllerRouterHandler]`` — its controllers.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from types import ModuleType
from typing import Any, cast

from gateway.lib.db import Migration
from gateway.server.container import Container

__all__ = ["DOMAINS", "all_migrations", "domain_modules"]

DOMAINS = ("system", "accounts", "credits", "billing", "generations", "burns", "web3", "studio")


def domain_modules() -> list[ModuleType]:
    """The domain modules present in this build (a domain without ``domain.py`` is not built yet)."""
    modules = []
    for name in DOMAINS:
        module_name = f"gateway.{name}.domain"
        try:
            modules.append(importlib.import_module(module_name))
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
    return modules


def all_migrations(dialect: str = "sqlite") -> list[Migration]:
    """Every domain's migrations in install order; on PostgreSQL a domain's ``POSTGRES_MIGRATIONS``
    (same ids) replace its ``MIGRATIONS`` when it has them (the ledger does)."""
    out: list[Migration] = []
    for module in domain_modules():
        postgres = getattr(module, "POSTGRES_MIGRATIONS", None) if dialect == "postgresql" else None
        out.extend(cast(Sequence[Migration], postgres if postgres is not None else getattr(module, "MIGRATIONS", ())))
    return out


async def install_all(container: Container) -> list[Any]:
    """Install every domain; returns their route handlers in order."""
    routes: list[Any] = []
    for module in domain_modules():
        install = cast(Callable[[Container], Awaitable[None]] | None, getattr(module, "install", None))
        if install is not None:
            await install(container)
        routes.extend(getattr(module, "ROUTES", ()))
    return routes

"""Shared fixtures for the gateway tests: settings, an in-process app with its container, a client.

``gateway_app`` builds the real app over a fresh state directory. The ledger is the credits domain's
real SQLite ledger once that domain is installed; until then (or when a test asks for ``fake_ledger``)
an in-memory one from ``tests.gateway.fake_ledger``. Services a test wants to replace are passed as
``provide={Type: instance}`` to ``make_gateway``; domain installs keep what is already provided.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.credits.ledger import Ledger
from gateway.lib.db import open_database
from gateway.server.container import Container
from gateway.server.core import GatewayApp, build_app
from gateway.server.domains import all_migrations
from gateway.settings import GatewaySettings
from tests.gateway.credits.pg_server import PostgresServer
from tests.gateway.fake_ledger import FakeLedger
from tests.support.gateway_fixture import gateway_factory  # noqa: F401 - fixture for every gateway test
from tests.support.inference_fixture import inference_factory  # noqa: F401 - fixture for every gateway test

# Cheap argon2 (the production cost is 64 MiB x 3 passes: too slow for dozens of test sign-ups on a
# shared 2-core box) and generous auth rate limits unless a test sets its own.
TEST_SETTINGS: dict[str, Any] = {
    "password_hash_memory_kib": 1024, "password_hash_time_cost": 1, "auth_rate_per_minute": 1000,
    "log_json": False, "sweep_interval_s": 0.2,
}
REAL_LEDGER = importlib.util.find_spec("gateway.credits.domain") is not None


def gateway_settings(tmp_path: Path, **overrides: Any) -> GatewaySettings:
    settings = GatewaySettings(state_dir=tmp_path, **{**TEST_SETTINGS, **overrides})
    settings.validate()
    return settings


MakeGateway = Callable[..., Awaitable[GatewayApp]]
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (each app gets its own schema)."""
    server = PostgresServer().start()
    yield server
    server.stop()


def _backends() -> list[str]:
    only = os.environ.get("GATEWAY_TEST_BACKEND", "")
    assert not only or only in BACKENDS, f"GATEWAY_TEST_BACKEND: one of {BACKENDS}"
    return [only] if only else BACKENDS


@pytest.fixture(params=_backends())
def gateway_backend(request: pytest.FixtureRequest) -> str:
    """The database ``make_gateway`` builds on: every test that builds a gateway runs on SQLite and on the
    session's PostgreSQL server; ``GATEWAY_TEST_BACKEND=sqlite|postgresql`` runs one of them only (local runs)."""
    return str(request.param)


@pytest.fixture
async def make_gateway(tmp_path: Path, gateway_backend: str, request: pytest.FixtureRequest
                       ) -> AsyncIterator[MakeGateway]:
    """``await make_gateway(provide={T: obj}, fake_ledger=False, **settings)`` → a built (not started) app,
    on ``gateway_backend`` (PostgreSQL: a fresh schema of the session's server per state directory, so
    that a restart on the same ``state_dir`` finds its data; unless the test passes a ``database_url``)."""
    built: list[GatewayApp] = []
    schemas: dict[Path, str] = {}

    async def make(*, provide: dict[type[Any], Any] | None = None, fake_ledger: bool = not REAL_LEDGER,
                   state_dir: Path | None = None, **overrides: Any) -> GatewayApp:
        state_dir = state_dir or tmp_path / f"gw{len(built)}"
        if gateway_backend == "postgresql" and "database_url" not in overrides:
            if state_dir not in schemas:
                schemas[state_dir] = request.getfixturevalue("pg_server").new_schema()
            overrides["database_url"] = schemas[state_dir]
        settings = gateway_settings(state_dir, **overrides)
        db = open_database(settings.database_url, settings.sqlite_path)
        db.migrate(all_migrations(db.dialect))
        container = Container(settings=settings, db=db)
        services = dict(provide or {})
        if fake_ledger:
            services.setdefault(Ledger, FakeLedger())
        for kind, service in services.items():
            container.provide(kind, service)
        app = await build_app(settings, container=container)
        built.append(app)
        return app

    yield make
    for app in built:
        app.container.db.close()
        close_ledger = getattr(app.container.find(Ledger), "close", None)  # type: ignore[type-abstract]
        if close_ledger is not None:
            await close_ledger()


@pytest.fixture
async def gateway(make_gateway: MakeGateway) -> GatewayApp:
    return await make_gateway()


@contextlib.asynccontextmanager
async def open_client(gateway: GatewayApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app on the test's own event loop, with the app's start-up and shut-down.

    (Litestar's AsyncTestClient runs the app through a blocking portal on another thread, which
    serialises concurrent requests: the concurrency tests need truly concurrent ones. The app's
    start-up and shut-down hooks are the container's; they are called directly because Litestar's
    lifespan holds an anyio task group that pytest-asyncio would enter and exit in different tasks.)
    """
    await gateway.container.start()
    try:
        transport = httpx.ASGITransport(app=gateway.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local", timeout=60) as client:
            yield client
    finally:
        await gateway.container.stop()


@pytest.fixture
async def client(gateway: GatewayApp) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(gateway) as test_client:
        yield test_client


async def signup(client: httpx.AsyncClient, email: str = "artist@example.com",
                 password: str = "correct horse battery") -> dict[str, Any]:
    """Sign up and return the token pair plus ``headers`` for bearer calls."""
    response = await client.post("/v1/auth/signup", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
    return body


def user_id_of(gateway: GatewayApp, access_token: str) -> str:
    from gateway.accounts.tokens import TokenService

    return gateway.container.get(TokenService).verify(access_token).subject

"""The app factory: settings → database → domains → one Litestar app."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from gateway.accounts.deps import ACCOUNT_DEPENDENCIES
from gateway.lib.db import open_database
from gateway.server.container import Container
from gateway.server.domains import all_migrations, install_all
from gateway.server.middleware import RequestContextMiddleware
from gateway.server.problems import exception_handlers
from gateway.settings import GatewaySettings

__all__ = ["GatewayApp", "build_app"]


@dataclass
class GatewayApp:
    app: Litestar
    container: Container


async def build_app(settings: GatewaySettings, *, container: Container | None = None) -> GatewayApp:
    """Open (and migrate) the database, install every domain, and build the app.

    Tests may pass a ``container`` whose services they pre-``provide`` (e.g. an in-memory inference
    client); a domain's ``install`` keeps a service that is already there.
    """
    if container is None:
        db = open_database(settings.database_url, settings.sqlite_path)
        db.migrate(all_migrations(db.dialect))
        container = Container(settings=settings, db=db)
    routes = await install_all(container)
    cors = CORSConfig(allow_origins=list(settings.cors_origins), allow_credentials=False,
                      allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
                      expose_headers=["Retry-After", "X-Request-Id"]) if settings.cors_origins else None
    app = Litestar(
        route_handlers=routes,
        state=State({"container": container, "settings": settings}),
        exception_handlers=exception_handlers,
        middleware=[DefineMiddleware(RequestContextMiddleware)],
        cors_config=cors,
        request_max_body_size=settings.max_body_bytes,
        dependencies=dict(ACCOUNT_DEPENDENCIES),
        openapi_config=OpenAPIConfig(
            title="creatorpass gateway", version="1", path="/schema",
            description="Pay per AI generation with $CREATE: card credits (Web2.5) or a CIP-30 wallet (Web3).",
            render_plugins=[ScalarRenderPlugin()],
            components=Components(security_schemes={
                "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT",
                                              description="Access token from /v1/auth/login or /v1/auth/signup"),
            }),
        ),
        on_startup=[container.start],
        on_shutdown=[container.stop],
        debug=False,
    )
    return GatewayApp(app=app, container=container)

"""The Creator's Studio page at ``/``: the reference client of this API, served as static files.

- ``GET /`` — the page; ``GET /studio/{file}`` — its script and style (an allow-list, no directory
  listing); ``GET /v1/studio/config`` — what the page needs to know (network, Stripe keys, test wallet).
- On the devnet only (``GATEWAY_NETWORK=devnet`` and ``GATEWAY_DEVNET_CONTROL_URL`` set), the page also
  gets ``window.cardano.devnet``: ``/studio/devnet-wallet.js`` and the ``/devnet-wallet/…`` proxy to the
  devnet's test wallets. Anywhere else both answer 404.
- The page is sent with a Content-Security-Policy that allows scripts from this origin and Stripe's
  only, and no inline script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import msgspec
from litestar import Controller, Request, Response, get, route
from litestar.datastructures import State
from litestar.params import PathParameter

from gateway.lib.db import Migration
from gateway.lib.errors import BadGateway, NotFound
from gateway.server.container import Container
from gateway.settings import GatewaySettings

__all__ = ["MIGRATIONS", "ROUTES", "StudioConfig", "install"]

MIGRATIONS: list[Migration] = []
STATIC_DIR = Path(__file__).parent / "static"
PAGE_FILES = {"studio.js": "text/javascript", "studio.css": "text/css"}
DEVNET_FILES = {"devnet-wallet.js": "text/javascript"}
REAL_STRIPE_JS = "https://js.stripe.com/v3/"
MAX_PROXY_BODY_BYTES = 64 * 1024


class StudioConfig(msgspec.Struct):
    network: str
    stripe_publishable_key: str
    stripe_js_url: str
    stripe_sandbox: bool
    devnet_wallet: bool
    stripe_options: dict[str, Any] = msgspec.field(default_factory=dict)


class DevnetWalletProxy:
    """Forwards the page's test-wallet calls to the devnet control API (devnet only)."""

    def __init__(self, control_url: str) -> None:
        self.base = control_url.rstrip("/")
        self.client = httpx.AsyncClient(timeout=15.0)

    async def forward(self, method: str, path: str, body: bytes) -> Response[bytes]:
        try:
            resp = await self.client.request(method, f"{self.base}/devnet/wallets/{path}", content=body or None,
                                             headers={"Content-Type": "application/json"} if body else None)
        except httpx.HTTPError as exc:
            raise BadGateway(f"the devnet's test wallet is not reachable: {type(exc).__name__}") from None
        return Response(resp.content, status_code=resp.status_code, media_type="application/json")

    async def close(self) -> None:
        await self.client.aclose()


def devnet_wallet_enabled(settings: GatewaySettings) -> bool:
    return settings.network == "devnet" and bool(settings.devnet_control_url)


def _stripe_js(settings: GatewaySettings) -> tuple[str, bool]:
    sandbox = bool(settings.stripe_api_base)
    if settings.stripe_js_url:
        return settings.stripe_js_url, sandbox
    if not settings.stripe_publishable_key:
        return "", sandbox
    return (REAL_STRIPE_JS, False) if not sandbox else (f"{settings.stripe_api_base.rstrip('/')}/v3/", True)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(settings: GatewaySettings) -> str:
    js_url, _ = _stripe_js(settings)
    stripe_origins = " ".join(o for o in {_origin(js_url), _origin(settings.stripe_api_base)} if o)
    extra = f" {stripe_origins}" if stripe_origins else ""
    return (f"default-src 'self'; script-src 'self'{extra}; connect-src 'self'{extra}; frame-src 'self'{extra}; "
            "img-src 'self' data: blob:; style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'")


async def install(container: Container) -> None:
    settings = container.settings
    if devnet_wallet_enabled(settings) and container.find(DevnetWalletProxy) is None:
        proxy = container.provide(DevnetWalletProxy, DevnetWalletProxy(settings.devnet_control_url))
        container.on_shutdown(proxy.close)


class StudioController(Controller):
    tags = ["studio"]

    @get("/", include_in_schema=False)
    async def page(self, state: State) -> Response[bytes]:
        settings: GatewaySettings = state.settings
        if not settings.studio_enabled:
            raise NotFound("The studio page is turned off on this gateway (GATEWAY_STUDIO_ENABLED)")
        return Response((STATIC_DIR / "index.html").read_bytes(), media_type="text/html",
                        headers={"Content-Security-Policy": content_security_policy(settings),
                                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
                                 "Cache-Control": "no-cache"})

    @get("/studio/{name:str}", include_in_schema=False)
    async def asset(self, name: Annotated[str, PathParameter(max_length=64)], state: State) -> Response[bytes]:
        settings: GatewaySettings = state.settings
        files = dict(PAGE_FILES)
        if devnet_wallet_enabled(settings):
            files.update(DEVNET_FILES)
        if name not in files or not settings.studio_enabled:
            raise NotFound(f"No studio file {name[:60]!r}")
        return Response((STATIC_DIR / name).read_bytes(), media_type=files[name],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @get("/v1/studio/config", summary="What the studio page needs: network, Stripe keys, devnet test wallet")
    async def config(self, state: State) -> StudioConfig:
        settings: GatewaySettings = state.settings
        js_url, sandbox = _stripe_js(settings)
        options: dict[str, Any] = {"apiBase": settings.stripe_api_base} if sandbox else {}
        return StudioConfig(network=settings.network, stripe_publishable_key=settings.stripe_publishable_key,
                            stripe_js_url=js_url, stripe_sandbox=sandbox,
                            devnet_wallet=devnet_wallet_enabled(settings), stripe_options=options)

    @route("/devnet-wallet/{path:path}", http_method=["GET", "POST"], include_in_schema=False)
    async def devnet_wallet(self, path: Annotated[str, PathParameter(max_length=200)], request: Request[Any, Any, Any],
                            state: State) -> Response[bytes]:
        container: Container = state.container
        proxy = container.find(DevnetWalletProxy)
        if proxy is None:
            raise NotFound("The devnet test wallet exists only on the devnet")
        body = await request.body() if request.method == "POST" else b""
        return await proxy.forward(request.method, path.lstrip("/"), body[:MAX_PROXY_BODY_BYTES])


ROUTES = [StudioController]

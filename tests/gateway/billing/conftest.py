"""Billing test stacks: the real gateway app served over HTTP on loopback + the Stripe sandbox process.

The gateway runs in-process (``build_app`` + uvicorn on its own thread and event loop) on a free
port, so the sandbox delivers signed webhooks to it for real; tests talk to both over HTTP only and
the sandbox through the real ``stripe`` library. ``BillingStack`` bundles them with helpers
(sign-up, account polling, signing our own webhook deliveries for forged / stale / reordered cases).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.credits.ledger import Ledger
from gateway.lib.db import open_database
from gateway.server.container import Container
from gateway.server.core import build_app
from gateway.server.domains import all_migrations
from gateway.settings import GatewaySettings
from tests.gateway.conftest import BACKENDS, REAL_LEDGER, gateway_settings
from tests.gateway.fake_ledger import FakeLedger
from tests.support.devnet_fixture import free_ports
from tests.support.stripe_fixture import StripeSandboxProcess

__all__ = ["BillingStack", "GatewayServer", "billing_stack", "chaos_stack", "manual_stack", "wait_until"]

TWO_PACKS = "pack10:10:500:usd:10 credits for $5.00;pack50:50:2000:usd:50 credits for $20.00"
WAIT_S = 60.0  # generous: the box is shared


def wait_until(predicate: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


class GatewayServer:
    """The real gateway app on 127.0.0.1:<port>, served by uvicorn on a thread with its own loop."""

    def __init__(self, settings: GatewaySettings, provide: dict[type[Any], Any] | None = None) -> None:
        self.settings = settings
        self.provide = dict(provide or {})
        self.url = f"http://127.0.0.1:{settings.port}"
        self._server: uvicorn.Server | None = None
        self.container: Container | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="gateway-under-test", daemon=True)

    def start(self) -> GatewayServer:
        self._thread.start()
        if not self._ready.wait(WAIT_S) or self._error is not None:
            raise RuntimeError(f"the gateway did not start: {self._error!r}")
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        db = open_database(self.settings.database_url, self.settings.sqlite_path)
        db.migrate(all_migrations(db.dialect))
        container = Container(settings=self.settings, db=db)
        if not REAL_LEDGER:
            container.provide(Ledger, FakeLedger())  # type: ignore[type-abstract]
        for kind, service in self.provide.items():
            container.provide(kind, service)
        built = await build_app(self.settings, container=container)
        self.container = container
        config = uvicorn.Config(built.app, host="127.0.0.1", port=self.settings.port, log_config=None,
                                access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        serving = asyncio.create_task(self._server.serve())
        while not self._server.started and not serving.done():
            await asyncio.sleep(0.01)
        self._ready.set()
        await serving

    def ledger(self) -> Ledger:
        """The gateway's own ledger (thread-safe: its calls run on the database's threads)."""
        assert self.container is not None
        ledger: Ledger = self.container.get(Ledger)  # type: ignore[type-abstract]
        return ledger

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(30)


class BillingStack:
    def __init__(self, gateway: GatewayServer, sandbox: StripeSandboxProcess) -> None:
        self.gateway = gateway
        self.sandbox = sandbox
        self.http = httpx.Client(base_url=gateway.url, timeout=60.0)
        self.stripe = sandbox.client()

    @property
    def webhook_secret(self) -> str:
        return self.gateway.settings.stripe_webhook_secret

    def signup(self) -> dict[str, str]:
        """A fresh artist; returns the Authorization header."""
        email = f"artist-{secrets.token_hex(6)}@example.com"
        response = self.http.post("/v1/auth/signup", json={"email": email, "password": "correct horse battery"})
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def user_id(self, headers: dict[str, str]) -> str:
        from gateway.accounts.tokens import TokenService

        assert self.gateway.container is not None
        token = headers["Authorization"].removeprefix("Bearer ")
        return self.gateway.container.get(TokenService).verify(token).subject

    def account(self, headers: dict[str, str]) -> dict[str, Any]:
        response = self.http.get("/v1/account", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_account(self, headers: dict[str, str], what: str, **expected: Any) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            account = self.account(headers)
            return account if all(account.get(k) == v for k, v in expected.items()) else None

        result: dict[str, Any] = wait_until(check, f"{what}: account with {expected}")
        return result

    def buy(self, headers: dict[str, str], payment_method: str = "pm_card_visa", pack: str = "pack10",
            **extra_headers: str) -> httpx.Response:
        return self.http.post("/api/billing/purchase-credits", json={"paymentMethodId": payment_method, "pack": pack},
                              headers={**headers, **extra_headers})

    def events_of(self, payment_intent_id: str) -> list[dict[str, Any]]:
        """Every sandbox event about one PaymentIntent (its charge, refunds, disputes), oldest first."""
        events = self.stripe.v1.events.list(params={"limit": 100}).to_dict()["data"]  # newest first
        return [e for e in reversed(events) if payment_intent_id in json.dumps(e["data"]["object"])]

    def wait_delivered(self, event_ids: list[str]) -> list[dict[str, Any]]:
        """Wait until each event was answered 2xx by the gateway at least once; their attempts."""
        def delivered() -> list[dict[str, Any]] | None:
            attempts = self.sandbox.deliveries()["attempts"]
            ok = {a["event"] for a in attempts if a["outcome"] == "succeeded"}
            return attempts if all(e in ok for e in event_ids) else None

        attempts: list[dict[str, Any]] = wait_until(delivered, f"delivery of {event_ids}")
        return attempts

    def post_event(self, event: dict[str, Any] | bytes, *, secret: str | None = None,
                   timestamp: int | None = None) -> httpx.Response:
        """Deliver an event ourselves, signed as Stripe signs (with our choice of secret and timestamp)."""
        payload = event if isinstance(event, bytes) else json.dumps(event).encode()
        return self.http.post("/v1/billing/webhook", content=payload,
                              headers={"Stripe-Signature": self.sign(payload, secret=secret, timestamp=timestamp),
                                       "Content-Type": "application/json"})

    def sign(self, payload: bytes, *, secret: str | None = None, timestamp: int | None = None) -> str:
        """A ``Stripe-Signature`` header for ``payload``: HMAC-SHA256 over ``"{t}.{payload}"``."""
        stamp = int(time.time()) if timestamp is None else timestamp
        signature = hmac.new((secret or self.webhook_secret).encode(), f"{stamp}.".encode() + payload,
                             hashlib.sha256).hexdigest()
        return f"t={stamp},v1={signature}"

    def close(self) -> None:
        self.http.close()
        self.gateway.stop()
        self.sandbox.close()


def make_stack(state_dir: Path, *, deliver: bool = True, provide: dict[type[Any], Any] | None = None,
               database_url: str = "", **sandbox_kwargs: Any) -> BillingStack:
    """A sandbox delivering to a gateway (or, ``deliver=False``, to nobody: the test delivers)."""
    port = free_ports(1, "127.0.0.1")[0]
    secret = "whsec_" + secrets.token_hex(16)
    hook = f"http://127.0.0.1:{port}/v1/billing/webhook"
    sandbox = StripeSandboxProcess(webhook_urls=(hook,) if deliver else (), webhook_secret=secret, **sandbox_kwargs)
    settings = gateway_settings(
        state_dir, port=port, public_url=f"http://127.0.0.1:{port}", credit_packs=TWO_PACKS,
        stripe_api_base=sandbox.url, stripe_secret_key=sandbox.secret_key, stripe_webhook_secret=secret,
        stripe_publishable_key=sandbox.publishable_key, stripe_max_network_retries=1, database_url=database_url)
    gateway = GatewayServer(settings, provide).start()
    try:
        sandbox.start()
    except BaseException:
        gateway.stop()
        raise
    return BillingStack(gateway, sandbox)


def _database_url(request: pytest.FixtureRequest) -> str:
    """'' (SQLite) or a fresh schema of the session's PostgreSQL server, by the fixture's param."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_server").new_schema())
    return ""


@pytest.fixture(scope="module", params=BACKENDS)
def billing_stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[BillingStack]:
    """Gateway + sandbox delivering every event to it (shared by a module; each test signs up its own artist),
    on each database backend."""
    stack = make_stack(tmp_path_factory.mktemp("billing"), database_url=_database_url(request))
    yield stack
    with contextlib.suppress(Exception):
        stack.close()


@pytest.fixture(scope="module", params=BACKENDS)
def chaos_stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[BillingStack]:
    """The sandbox delivering chaotically: seeded delays (reordering) and duplicates, on each backend."""
    stack = make_stack(tmp_path_factory.mktemp("billing-chaos"), database_url=_database_url(request), chaos_seed=1967,
                       extra_args=("--chaos-duplicate-rate", "0.6", "--chaos-max-delay-s", "0.4"))
    yield stack
    with contextlib.suppress(Exception):
        stack.close()


@pytest.fixture(scope="module")
def manual_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BillingStack]:
    """The sandbox delivers nothing: the test posts the sandbox's events itself, in the order it wants."""
    stack = make_stack(tmp_path_factory.mktemp("billing-manual"), deliver=False)
    yield stack
    with contextlib.suppress(Exception):
        stack.close()

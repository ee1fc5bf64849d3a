"""``kill -9`` of the gateway while Stripe has news for it: nothing is lost, nothing is credited twice."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.billing.conftest import wait_until
from tests.support.gateway_fixture import GatewayProcess
from tests.support.stripe_fixture import StripeSandboxProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[GatewayProcess, StripeSandboxProcess]]:
    gateway = GatewayProcess(state_dir=tmp_path / "gateway")
    sandbox = StripeSandboxProcess(webhook_urls=(f"{gateway.url}/v1/billing/webhook",), webhook_timeout_s=2.0)
    (tmp_path / "whsec").write_text(sandbox.webhook_secret)
    (tmp_path / "sk").write_text(sandbox.secret_key)
    gateway.env.update({
        "GATEWAY_STRIPE_API_BASE": sandbox.url, "GATEWAY_STRIPE_SECRET_KEY_FILE": str(tmp_path / "sk"),
        "GATEWAY_STRIPE_WEBHOOK_SECRET_FILE": str(tmp_path / "whsec")})
    try:
        yield gateway.start(), sandbox.start()
    finally:
        gateway.close()
        sandbox.close()


def test_payment_made_while_the_gateway_is_down_is_credited_after_restart(
        processes: tuple[GatewayProcess, StripeSandboxProcess]) -> None:
    gateway, sandbox = processes
    http = httpx.Client(base_url=gateway.url, timeout=60.0)
    signed_up = http.post("/v1/auth/signup", json={"email": f"k9-{secrets.token_hex(4)}@example.com",
                                                   "password": "correct horse battery"})
    headers = {"Authorization": f"Bearer {signed_up.json()['access_token']}"}
    intent = http.post("/v1/billing/payment-intents", json={"pack": "pack10"}, headers=headers).json()
    gateway.kill()  # SIGKILL: only what was committed survives
    sandbox.client().v1.payment_intents.confirm(intent["payment_intent_id"], params={"payment_method": "pm_card_visa"})

    def failed_once() -> bool:
        attempts = sandbox.deliveries(event=None)["attempts"]
        return any(a["type"] == "payment_intent.succeeded" and a["outcome"] == "failed" for a in attempts)

    wait_until(failed_once, "a delivery that found the gateway down")
    gateway.start()
    sandbox.deliver_now()

    def credited() -> dict[str, Any] | None:
        account: dict[str, Any] = http.get("/v1/account", headers=headers).json()
        return account if account["credits_available"] == 10 else None

    wait_until(credited, "the retried webhook's credit")
    # every pending retry delivered again: still credited once
    sandbox.deliver_now()
    for event in sandbox.client().v1.events.list(params={"limit": 100}).to_dict()["data"]:
        sandbox.control("POST", f"/_sandbox/events/{event['id']}/resend", {})
    sandbox.deliver_now()
    wait_until(lambda: not sandbox.deliveries()["pending"], "all resends delivered")
    assert http.get("/v1/account", headers=headers).json()["credits_available"] == 10
    purchase = http.get(f"/v1/billing/purchases/{intent['purchase_id']}", headers=headers).json()
    assert purchase["status"] == "succeeded" and purchase["credited"] is True
    http.close()

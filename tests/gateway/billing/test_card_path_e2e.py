"""The card path end to end, every part a real process on loopback: inference, the Stripe sandbox,
``python -m gateway``. Sign up → buy a pack with a sandbox card → webhook → credits → generate →
PNGs downloaded by the owner (another artist gets 404) → the spent credit's intent in the outbox."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.billing.conftest import wait_until
from tests.support.gateway_fixture import GatewayProcess
from tests.support.inference_fixture import InferenceProcess
from tests.support.stripe_fixture import StripeSandboxProcess

pytestmark = pytest.mark.slow


class CardStudio:
    def __init__(self, tmp_path: Path) -> None:
        self.inference = InferenceProcess(data_dir=tmp_path / "inference")
        self.gateway = GatewayProcess(state_dir=tmp_path / "gateway")
        self.sandbox = StripeSandboxProcess(webhook_urls=(f"{self.gateway.url}/v1/billing/webhook",))
        secrets_dir = tmp_path / "secrets"
        secrets_dir.mkdir()
        (secrets_dir / "stripe_key").write_text(self.sandbox.secret_key)
        (secrets_dir / "whsec").write_text(self.sandbox.webhook_secret)
        self.gateway.env.update({
            "GATEWAY_STRIPE_API_BASE": self.sandbox.url,
            "GATEWAY_STRIPE_SECRET_KEY_FILE": str(secrets_dir / "stripe_key"),
            "GATEWAY_STRIPE_WEBHOOK_SECRET_FILE": str(secrets_dir / "whsec"),
            "GATEWAY_STRIPE_PUBLISHABLE_KEY": self.sandbox.publishable_key,
            "GATEWAY_INFERENCE_TARGET": self.inference.grpc_target,
        })
        self.http = httpx.Client(base_url=self.gateway.url, timeout=60.0)

    def start(self) -> CardStudio:
        self.inference.start()
        self.sandbox.start()
        self.gateway.start()
        return self

    def close(self) -> None:
        self.http.close()
        for process in (self.gateway, self.sandbox, self.inference):
            process.close()

    def signup(self) -> dict[str, str]:
        response = self.http.post("/v1/auth/signup", json={"email": f"e2e-{secrets.token_hex(4)}@example.com",
                                                           "password": "correct horse battery"})
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def reconcile(self) -> dict[str, Any]:
        done = self.gateway.cli("reconcile", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return report


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[CardStudio]:
    started = CardStudio(tmp_path)
    try:
        yield started.start()
    finally:
        started.close()


def test_sign_up_buy_by_card_generate_and_download(studio: CardStudio) -> None:
    artist = studio.signup()
    # Stripe.js in the browser: card fields → a PaymentMethod, with the publishable key
    browser = studio.sandbox.client(api_key=studio.sandbox.publishable_key)
    card = browser.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    # Elements: the gateway makes the intent, the browser confirms it, only the webhook credits
    intent = studio.http.post("/v1/billing/payment-intents", json={"pack": "pack10"}, headers=artist)
    assert intent.status_code == 201, intent.text
    browser.v1.payment_intents.confirm(intent.json()["payment_intent_id"], params={
        "payment_method": card.id, "client_secret": intent.json()["client_secret"]})

    def credited() -> dict[str, Any] | None:
        account: dict[str, Any] = studio.http.get("/v1/account", headers=artist).json()
        return account if account["credits_available"] == 10 else None

    wait_until(credited, "the webhook's credit")

    started = studio.http.post("/v1/generations", json={"prompt": "a red fox in the snow", "params": {}},
                               headers={**artist, "Idempotency-Key": "e2e-first"})
    assert started.status_code == 202, started.text
    generation_id = started.json()["id"]

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = studio.http.get(f"/v1/generations/{generation_id}", headers=artist).json()
        return body if body["status"] in ("succeeded", "failed") else None

    generation = wait_until(finished, "the generation", timeout_s=120)
    assert generation["status"] == "succeeded", generation
    assert generation["images"]
    stranger = studio.signup()
    for image in generation["images"]:
        png = studio.http.get(image["url"])
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
        sha = image["url"].split("/v1/images/")[1].split("?")[0]
        assert studio.http.get(f"/v1/images/{sha}", headers=artist).content == png.content
        assert studio.http.get(f"/v1/images/{sha}", headers=stranger).status_code == 404
    assert studio.http.get(f"/v1/generations/{generation_id}", headers=stranger).status_code == 404
    spent = 10 - studio.http.get("/v1/account", headers=artist).json()["credits_available"]
    assert spent >= 1
    report = studio.reconcile()
    assert report["ok"] is True, report
    assert report["totals"]["credits_spent"] == spent
    assert report["totals"]["credits_in_outbox"] == spent

"""Three real ``python -m gateway`` replicas on one real PostgreSQL server behave as one service.

- 50 concurrent generations on 10 credits, spread over the three → exactly 10 accepted and delivered;
- a Stripe webhook delivered to one replica and its duplicates to the two others at once → credited once;
- ``kill -9`` of the replica running a generation → a surviving replica takes it over (once) and, as
  no image was delivered, voids it: the artist is not charged.

The replicas share one state directory (the JWT and image-URL keys as ``*_FILE`` secrets, the images
on what stands for a shared volume); everything else they keep is in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway.credits.postgres_store import PostgresLedger
from tests.gateway.credits.pg_server import PostgresServer
from tests.support.black_hole import black_hole_server
from tests.support.gateway_fixture import GatewayProcess
from tests.support.inference_fixture import InferenceProcess
from tests.support.stripe_fixture import StripeSandboxProcess

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"
WAIT_S = 60.0


def _write_secret(directory: Path, name: str, value: str) -> str:
    path = directory / name
    path.write_text(value)
    path.chmod(0o600)
    return str(path)


def wait_until(predicate: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Replicas:
    def __init__(self, url: str, gateways: list[GatewayProcess], sandbox: StripeSandboxProcess, webhook_secret: str):
        self.url = url
        self.gateways = gateways
        self.sandbox = sandbox
        self.webhook_secret = webhook_secret

    def ledger(self, fn: Callable[[PostgresLedger], Any]) -> Any:
        async def run() -> Any:
            ledger = await PostgresLedger.open(self.url, run_migrations=False, max_size=1)
            try:
                return await fn(ledger)
            finally:
                await ledger.close()

        return asyncio.run(run())

    def signup(self, gw: GatewayProcess) -> tuple[str, dict[str, str]]:
        return signup(gw)


def signup(gw: GatewayProcess) -> tuple[str, dict[str, str]]:
    """A fresh artist through ``gw``: (user id, Authorization header)."""
    email = f"artist-{secrets.token_hex(6)}@example.com"
    status, body = gw.json("POST", "/v1/auth/signup", json_body={"email": email, "password": PASSWORD})
    assert status == 201, body
    payload = body["access_token"].split(".")[1]
    user_id = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
    return user_id, {"Authorization": f"Bearer {body['access_token']}"}


def _replica_env(url: str, state: Path, inference_target: str, sandbox: StripeSandboxProcess,
                 webhook_secret: str) -> dict[str, str]:
    keys = state / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    return {
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_INFERENCE_TARGET": inference_target,
        "GATEWAY_JWT_SECRET_FILE": _write_secret(keys, "jwt", secrets.token_hex(32)),
        "GATEWAY_IMAGE_URL_SECRET_FILE": _write_secret(keys, "image_url", secrets.token_hex(32)),
        "GATEWAY_STRIPE_SECRET_KEY_FILE": _write_secret(keys, "stripe", sandbox.secret_key),
        "GATEWAY_STRIPE_WEBHOOK_SECRET_FILE": _write_secret(keys, "whsec", webhook_secret),
        "GATEWAY_STRIPE_API_BASE": sandbox.url,
        "GATEWAY_STRIPE_PUBLISHABLE_KEY": sandbox.publishable_key,
        "GATEWAY_CREDIT_PACKS": "pack10:10:500:usd:10 credits for $5.00",
        "GATEWAY_SWEEP_INTERVAL_S": "0.5",
    }


@pytest.fixture(scope="module")
def black_hole() -> Iterator[str]:
    """A TCP port that accepts connections and never answers: a generation sent there stays in flight."""
    with black_hole_server() as target:
        yield target


@pytest.fixture(scope="module")
def replicas(pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory,
             black_hole: str) -> Iterator[Replicas]:
    tmp = tmp_path_factory.mktemp("replicas")
    inference = InferenceProcess(data_dir=tmp / "inference").start()
    sandbox = StripeSandboxProcess(webhook_secret="whsec_" + secrets.token_hex(16)).start()
    webhook_secret = sandbox.webhook_secret
    url = pg_server.new_schema()
    state = tmp / "shared-state"
    env = _replica_env(url, state, inference.grpc_target, sandbox, webhook_secret)
    gateways: list[GatewayProcess] = []
    try:
        for _ in range(3):  # one after the other: the first applies the migrations, the others find them
            gateways.append(GatewayProcess(state_dir=state, env=env).start())
        # a fourth, whose inference never answers, for the kill -9 test (started when needed)
        gateways.append(GatewayProcess(state_dir=state, env={**env, "GATEWAY_INFERENCE_TARGET": black_hole}))
        yield Replicas(url, gateways, sandbox, webhook_secret)
    finally:
        for gw in gateways:
            gw.close()
        sandbox.close()
        inference.close()


def _generate(gw: GatewayProcess, headers: dict[str, str], prompt: str) -> tuple[int, Any]:
    return gw.json("POST", "/v1/generations", json_body={"prompt": prompt, "params": {"width": 64, "height": 64}},
                   headers={**headers, "Idempotency-Key": uuid.uuid4().hex})


def _wait_done(gw: GatewayProcess, headers: dict[str, str], generation_id: str) -> Any:
    def done() -> Any:
        status, body = gw.json("GET", f"/v1/generations/{generation_id}", headers=headers)
        assert status == 200, body
        return body if body["status"] in ("succeeded", "failed") else None

    return wait_until(done, f"generation {generation_id}")


def test_fifty_generations_on_ten_credits_over_three_replicas(replicas: Replicas) -> None:
    three = replicas.gateways[:3]
    user_id, headers = replicas.signup(three[0])
    replicas.ledger(lambda ledger: ledger.credit_purchase(user_id=user_id, credits=10, key=f"test:{uuid.uuid4()}"))
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda i: (i % 3, *_generate(three[i % 3], headers, f"study {i}")), range(50)))
    statuses = [status for _, status, _ in results]
    assert statuses.count(202) == 10 and statuses.count(402) == 40, statuses  # the shared ledger decides
    assert all(body["error"] == "Insufficient credits. Please purchase more." for _, s, body in results if s == 402)
    finals = [_wait_done(three[(replica + 1) % 3], headers, body["id"])  # read back through another replica
              for replica, status, body in results if status == 202]
    assert [f["status"] for f in finals] == ["succeeded"] * 10, finals
    balance = replicas.ledger(lambda ledger: ledger.balance(user_id))
    assert (balance.available, balance.pending, balance.spent) == (0, 0, 10)
    assert replicas.ledger(lambda ledger: ledger.reconcile()).ok


def test_a_webhook_and_its_duplicates_on_three_replicas_credit_once(replicas: Replicas) -> None:
    three = replicas.gateways[:3]
    user_id, headers = replicas.signup(three[0])
    status, body = three[0].json("POST", "/v1/billing/payment-intents", json_body={"pack": "pack10"}, headers=headers)
    assert status == 201, body
    stripe = replicas.sandbox.client()
    stripe.v1.payment_intents.confirm(body["payment_intent_id"], params={"payment_method": "pm_card_visa"})
    events = stripe.v1.events.list(params={"limit": 100}).to_dict()["data"]
    succeeded = next(e for e in events if e["type"] == "payment_intent.succeeded"
                     and e["data"]["object"]["id"] == body["payment_intent_id"])
    payload = json.dumps(succeeded).encode()

    def deliver(gw: GatewayProcess) -> tuple[int, Any]:
        import hashlib
        import hmac

        stamp = int(time.time())
        signature = hmac.new(replicas.webhook_secret.encode(), f"{stamp}.".encode() + payload,
                             hashlib.sha256).hexdigest()
        status, _headers, raw = gw.request("POST", "/v1/billing/webhook", body=payload, headers={
            "Stripe-Signature": f"t={stamp},v1={signature}", "Content-Type": "application/json"})
        return status, raw

    with ThreadPoolExecutor(max_workers=6) as pool:  # the event twice on each replica, all at once
        answers = list(pool.map(deliver, [*three, *three]))
    assert [status for status, _ in answers] == [200] * 6, answers
    balance = replicas.ledger(lambda ledger: ledger.balance(user_id))
    assert (balance.available, balance.pending) == (10, 0)
    status, account = three[2].json("GET", "/v1/account", headers=headers)
    assert status == 200 and account["credits_available"] == 10, account


def test_a_killed_replicas_generation_is_taken_over_once_and_not_charged(replicas: Replicas) -> None:
    doomed = replicas.gateways[3].start()  # its inference never answers: the generation stays running
    survivors = replicas.gateways[:3]
    user_id, headers = replicas.signup(doomed)
    replicas.ledger(lambda ledger: ledger.credit_purchase(user_id=user_id, credits=1, key=f"test:{uuid.uuid4()}"))
    status, body = _generate(doomed, headers, "in flight when its replica dies")
    assert status == 202, body
    held = replicas.ledger(lambda ledger: ledger.balance(user_id))
    assert (held.available, held.pending) == (0, 1)
    doomed.kill()  # SIGKILL: no graceful void; its PostgreSQL sessions (and liveness lock) end with it
    final = _wait_done(survivors[0], headers, body["id"])
    assert final["status"] == "failed" and final["error_code"] == "interrupted", final
    hold = replicas.ledger(lambda ledger: ledger.get_hold(body["id"]))
    assert hold is not None and hold.state == "voided"
    balance = replicas.ledger(lambda ledger: ledger.balance(user_id))
    assert (balance.available, balance.pending, balance.spent) == (1, 0, 0)
    takeovers = sum(1 for gw in survivors for line in gw.log_text().splitlines()
                    if "generation_recovered" in line and body["id"] in line)
    assert takeovers == 1, f"{takeovers} replicas finished the generation"

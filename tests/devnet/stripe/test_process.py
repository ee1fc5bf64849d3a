"""The sandbox as a process: bad settings, the state file across restarts, controls, odd requests."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import stripe

from tests.support.stripe_fixture import REPO_ROOT, StripeSandboxProcess


def test_bad_setting_exits_2_naming_the_variable() -> None:
    result = subprocess.run([sys.executable, "-m", "devnet.stripe", "--webhook-retry-scale", "-1"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "STRIPE_SANDBOX_WEBHOOK_RETRY_SCALE" in result.stderr


def test_state_file_keeps_objects_events_and_idempotency_keys(
        stripe_sandbox_factory: Callable[..., StripeSandboxProcess], tmp_path: Path) -> None:
    state = tmp_path / "not-yet" / "stripe.json"  # a fresh state directory, as make up has on first start
    sbx = stripe_sandbox_factory(state_file=state)
    client = sbx.client()
    params = {"amount": 500, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
              "payment_method_types": ["card"]}
    pi = client.v1.payment_intents.create(params=params, options={"idempotency_key": "persist-1"})
    assert sbx.stop() == 0
    assert state.exists()
    sbx.start()
    client = sbx.client()
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    replay = client.v1.payment_intents.create(params=params, options={"idempotency_key": "persist-1"})
    assert replay.id == pi.id
    assert len(client.v1.events.list().data) == 3


def test_trigger_reset_and_resend(sandbox: StripeSandboxProcess) -> None:
    result = sandbox.trigger("charge.refunded", amount=1200)
    assert result["object"]["object"] == "refund" and result["object"]["amount"] == 1200
    assert [e["type"] for e in result["events"]] == ["payment_intent.created", "charge.succeeded",
                                                     "payment_intent.succeeded", "refund.created", "charge.refunded"]
    status, body = sandbox.control("POST", "/_sandbox/events/trigger", {"type": "customer.created"})
    assert status == 400 and "cannot trigger" in body["error"]["message"]
    status, body = sandbox.control("POST", f"/_sandbox/events/{result['events'][0]['id']}/resend")
    assert status == 200
    assert sandbox.info()["counts"]["events"] == 5
    sandbox.reset()
    assert sandbox.info()["counts"]["events"] == 0
    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client().v1.refunds.retrieve(result["object"]["id"])


def test_odd_requests_get_stripe_errors(sandbox: StripeSandboxProcess) -> None:
    def post(path: str, body: bytes, ctype: str, key: str | None = None) -> tuple[int, str]:
        req = urllib.request.Request(sandbox.url + path, data=body, method="POST", headers={
            "Content-Type": ctype, "Authorization": f"Bearer {key or sandbox.secret_key}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    status, text = post("/v1/nothing_here", b"", "application/x-www-form-urlencoded")
    assert status == 404 and "Unrecognized request URL" in text
    status, text = post("/v1/payment_intents", b'{"amount": 5}', "application/json")
    assert status == 400 and "invalid_request_error" in text
    status, text = post("/v1/payment_intents", b"amount=" + b"9" * 300_000, "application/x-www-form-urlencoded")
    assert status == 413
    status, text = post("/v1/payment_intents", b"amount=500&currency=usd", "application/x-www-form-urlencoded",
                        key="Bearer")
    assert status == 401
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sandbox.client().v1.payment_intents.retrieve("pi_x", options={"stripe_version": "yesterday"})
    assert caught.value.code == "api_version_invalid"


def test_kill_9_loses_at_most_the_last_second(stripe_sandbox_factory: Callable[..., StripeSandboxProcess],
                                              tmp_path: Path) -> None:
    import time

    state = tmp_path / "stripe.json"
    sbx = stripe_sandbox_factory(state_file=state)
    pi = sbx.client().v1.payment_intents.create(params={"amount": 500, "currency": "usd"})
    deadline = time.monotonic() + 30
    while not (state.exists() and pi.id in state.read_text()):
        assert time.monotonic() < deadline, "the state file never took the intent"
        time.sleep(0.1)
    sbx.kill()
    sbx.start()
    assert sbx.client().v1.payment_intents.retrieve(pi.id).amount == 500

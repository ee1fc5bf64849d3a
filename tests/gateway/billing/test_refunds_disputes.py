"""Refunds (full and partial, pro rata) and disputes (frozen, won, lost) through the sandbox's webhooks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from gateway.credits.ledger import AccountFrozen
from tests.gateway.billing.conftest import BillingStack
from tests.support.gateway_fixture import REPO_ROOT


def _bought(stack: BillingStack, card: str = "pm_card_visa") -> tuple[dict[str, str], dict[str, Any]]:
    headers = stack.signup()
    response = stack.buy(headers, card)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    return headers, response.json()


def _refund(stack: BillingStack, payment_intent_id: str, amount: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"payment_intent": payment_intent_id}
    if amount is not None:
        params["amount"] = amount
    refund: dict[str, Any] = stack.stripe.v1.refunds.create(params=params).to_dict()
    return refund


def test_partial_refunds_reverse_pro_rata_on_the_cumulative_amount(billing_stack: BillingStack) -> None:
    headers, bought = _bought(billing_stack)  # 10 credits for 500 cents
    pi = bought["payment_intent_id"]
    _refund(billing_stack, pi, 130)  # floor(10 × 130 / 500) = 2
    billing_stack.wait_account(headers, "first partial refund", credits_available=8)
    # cumulative 260 → floor(5.2) = 5 in all, so 3 more; rounding each refund alone would give 2 + 2
    _refund(billing_stack, pi, 130)
    billing_stack.wait_account(headers, "second partial refund", credits_available=5)
    _refund(billing_stack, pi)  # the remaining 240: everything is reversed
    billing_stack.wait_account(headers, "full refund", credits_available=0)
    refunded = [e["id"] for e in billing_stack.events_of(pi) if e["type"] == "charge.refunded"]
    assert len(refunded) == 3
    billing_stack.wait_delivered(refunded)
    # the sandbox delivers them all again: replays are no-ops
    for event_id in refunded:
        billing_stack.sandbox.control("POST", f"/_sandbox/events/{event_id}/resend", {})
    billing_stack.sandbox.deliver_now()
    attempts = billing_stack.sandbox.deliveries()["attempts"]
    replays = [a for a in attempts if a["event"] in refunded and '"duplicate":true' in (a["response_body"] or "")]
    assert len(replays) == 3, replays
    assert billing_stack.account(headers)["credits_available"] == 0


def test_full_refund_reverses_every_credit(billing_stack: BillingStack) -> None:
    headers, bought = _bought(billing_stack)
    _refund(billing_stack, bought["payment_intent_id"])
    billing_stack.wait_account(headers, "full refund", credits_available=0, frozen=False)


def test_dispute_freezes_the_account_until_it_is_won(billing_stack: BillingStack) -> None:
    headers, bought = _bought(billing_stack, "pm_card_createDispute")
    account = billing_stack.wait_account(headers, "dispute opened", frozen=True)
    assert account["credits_available"] == 10  # frozen, not taken: the dispute is still open
    refused = billing_stack.buy(headers)
    assert refused.status_code == 403 and refused.json()["code"] == "account_frozen"
    assert "dispute" in refused.json()["error"]
    user_id = billing_stack.user_id(headers)
    with pytest.raises(AccountFrozen, match="dispute"):  # no new holds: generations are refused too
        asyncio.run(billing_stack.gateway.ledger().hold(user_id=user_id, generation_id="gen-frozen-1",
                                                         timeout_s=60))
    disputes = billing_stack.stripe.v1.disputes.list(params={"limit": 100}).to_dict()["data"]
    dispute = next(d for d in disputes if d["payment_intent"] == bought["payment_intent_id"])
    refused_cli = _gateway_cli(billing_stack, "billing-unfreeze", "--user-id", user_id)
    assert refused_cli.returncode == 1 and "still open" in refused_cli.stderr
    billing_stack.sandbox.close_dispute(dispute["id"], "won")
    billing_stack.wait_account(headers, "dispute won", frozen=False, credits_available=10)
    assert billing_stack.buy(headers).status_code == 200  # purchases work again


def test_lost_dispute_reverses_the_credits_and_stays_frozen(billing_stack: BillingStack) -> None:
    headers, bought = _bought(billing_stack, "pm_card_createDispute")
    billing_stack.wait_account(headers, "dispute opened", frozen=True)
    disputes = billing_stack.stripe.v1.disputes.list(params={"limit": 100}).to_dict()["data"]
    dispute = next(d for d in disputes if d["payment_intent"] == bought["payment_intent_id"])
    billing_stack.sandbox.close_dispute(dispute["id"], "lost")
    billing_stack.wait_account(headers, "dispute lost", frozen=True, credits_available=0)
    # the operator decides: the account stays frozen until they lift it
    email = billing_stack.http.get("/v1/account", headers=headers).json()["email"]
    lifted = _gateway_cli(billing_stack, "billing-unfreeze", "--email", email.upper(), "--reason", "paid back")
    assert lifted.returncode == 0, lifted.stderr
    assert dispute["id"] in lifted.stdout
    assert billing_stack.account(headers)["frozen"] is False
    assert billing_stack.buy(headers).status_code == 200
    report = _gateway_cli(billing_stack, "reconcile", "--json")
    result = json.loads(report.stdout.strip().splitlines()[-1])
    assert report.returncode == 0, report.stdout + report.stderr  # on both backends, every check
    assert result["checks"]["billing"]["ok"] is True
    assert result["totals"]["billing.disputes_lost"] >= 1 and result["totals"]["billing.credits_reversed"] >= 10


def _gateway_cli(stack: BillingStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_STATE_DIR": str(stack.gateway.settings.state_dir), "GATEWAY_LOG_JSON": "false",
           "GATEWAY_DATABASE_URL": stack.gateway.settings.database_url}
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)

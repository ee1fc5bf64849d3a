"""In-process: the burns routes with the burner off, the treasury guard on the card path, settings checks."""

from __future__ import annotations

from typing import Any

import pytest

from common.settings import ConfigError
from gateway.burns.treasury import TreasuryGuard, TreasuryLow
from gateway.credits.ledger import Ledger
from tests.gateway.conftest import MakeGateway, open_client, signup, user_id_of


async def test_burn_list_and_receipts_without_a_burner(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    async with open_client(gateway) as client:
        page = (await client.get("/v1/burns")).json()
        assert page["batches"] == [] and page["next"] is None
        assert page["totals"]["credits_spent"] == 0 and page["totals"]["pending"] == 0
        assert (await client.get("/v1/burns?limit=0")).status_code == 400
        assert (await client.get("/v1/burns?before=nope")).status_code == 404

        owner = await signup(client, email="owner@example.com")
        other = await signup(client, email="other@example.com")
        ledger: Any = gateway.container.get(Ledger)  # type: ignore[type-abstract]
        user = user_id_of(gateway, owner["access_token"])
        await ledger.credit_purchase(user_id=user, credits=1, key="test:routes")
        await ledger.hold(user_id=user, generation_id="gen-routes-1", timeout_s=60)
        await ledger.post("gen-routes-1")

        mine = await client.get("/v1/generations/gen-routes-1/receipt", headers=owner["headers"])
        assert mine.status_code == 404 and mine.json()["code"] == "receipt_pending"
        theirs = await client.get("/v1/generations/gen-routes-1/receipt", headers=other["headers"])
        assert theirs.status_code == 404 and theirs.json()["code"] == "generation_not_found"
        assert (await client.get("/v1/generations/gen-routes-1/receipt")).status_code == 401
        assert (await client.get("/v1/burns")).json()["totals"]["pending"] == 1


async def test_low_treasury_refuses_card_generations_with_503(make_gateway: MakeGateway) -> None:
    guard = TreasuryGuard(min_tokens=10, min_lovelace=1)
    guard.update(tokens_free=3, lovelace=50_000_000)
    gateway = await make_gateway(provide={TreasuryGuard: guard})
    async with open_client(gateway) as client:
        artist = await signup(client)
        response = await client.post("/v1/generations", json={"prompt": "a fox"},
                                     headers={**artist["headers"], "Idempotency-Key": "low-1"})
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "treasury_low" and response.headers["Retry-After"] == "60"
        assert "3 unpromised $CREATE" in response.json()["error"]


def test_treasury_guard_reasons() -> None:
    guard = TreasuryGuard(min_tokens=10, min_lovelace=5_000_000)
    guard.require()  # no reading yet: nothing to refuse on
    guard.update(tokens_free=10, lovelace=5_000_000)
    guard.require()
    guard.update(tokens_free=10, lovelace=4_999_999)
    with pytest.raises(TreasuryLow, match="lovelace"):
        guard.require()
    off = TreasuryGuard(min_tokens=10, min_lovelace=1, enabled=False)
    off.update(tokens_free=0, lovelace=0)
    off.require()


@pytest.mark.parametrize("setting", [{"burn_lanes": 0}, {"burn_batch_max": 0}, {"burn_confirmations": 0},
                                     {"burn_ttl_slots": 1}, {"burn_poll_interval_s": 0}])
async def test_bad_burn_settings_refuse_to_start(make_gateway: MakeGateway, setting: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_BURN_"):
        await make_gateway(**setting)

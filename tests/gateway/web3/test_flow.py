"""The wallet path end to end over a real devnet and indexer: happy paths."""

from __future__ import annotations

import threading
import time
from typing import Any

import cbor2
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from gateway.lib.errors import GatewayError
from gateway.web3.cborspan import array_items
from gateway.web3.payment import PaidGenerator
from tests.gateway.conftest import MakeGateway
from tests.gateway.web3.conftest import (
    ASSET,
    MIN_CONFIRMATIONS,
    ChainStack,
    FakeGenerator,
    Web3Gateway,
    hand_built_payment,
    web3_settings,
)
from tests.gateway.web3.wallet import TestWallet


def _funded(stack: ChainStack, **kw: int) -> TestWallet:
    wallet = TestWallet()
    stack.fund(wallet, **kw)
    return wallet


async def test_config_and_balance(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    config = (await gw.client.get("/v1/web3/config")).json()
    assert config == {"network_id": 0, "asset": {"policy_id": ASSET.policy_id, "asset_name": ASSET.asset_name},
                      "pay_to_address": gw.stack.treasury.bech32, "price": 1,
                      "min_confirmations": MIN_CONFIRMATIONS, "quote_ttl_s": 600}
    wallet = _funded(gw.stack, create=4, fake=9)
    for address in (wallet.bech32, wallet.raw.hex()):
        balance = (await gw.client.get(f"/v1/wallets/{address}/balance")).json()
        assert balance["create"] == 4 and balance["lovelace"] == 20_000_000 and balance["address"] == wallet.bech32
    bad = await gw.client.get("/v1/wallets/stake_test1xyz/balance")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_address"


async def test_submit_through_server_releases_images_at_depth(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    delivered_before = REGISTRY.get_sample_value("gateway_web3_payments_total", {"outcome": "delivered"}) or 0.0
    quote = await gw.quote(wallet)
    assert set(quote) == {"quote_id", "tx_cbor", "tx_id", "fee", "expires_at"}
    submitted = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit",
                                     json={"witness_set": wallet.sign_tx(quote["tx_id"])})
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["tx_id"] == quote["tx_id"]
    await gw.wait_started(quote["quote_id"])  # speculative: generation runs while the tx is in the mempool
    await gw.blocks(MIN_CONFIRMATIONS - 1)
    view = await gw.state(quote["quote_id"])
    assert view["state"] == "waiting" and view["image_urls"] is None  # not deep enough yet
    await gw.blocks(1)
    view = await gw.wait_state(quote["quote_id"], {"delivered", "failed"})
    assert view["state"] == "delivered", view
    assert view["image_urls"] == [f"/v1/images/{quote['quote_id']}-0.png"]
    balance = (await gw.client.get(f"/v1/wallets/{gw.stack.treasury.bech32}/balance")).json()
    assert balance["create"] >= 1
    replay = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit",
                                  json={"witness_set": wallet.sign_tx(quote["tx_id"])})
    assert replay.status_code == 202 and replay.json()["state"] == "delivered"  # a replay is a no-op
    assert REGISTRY.get_sample_value("gateway_web3_payments_total", {"outcome": "delivered"}) == delivered_before + 1


async def test_wallet_submits_itself_then_confirms(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote = await gw.quote(wallet)
    parts = cbor2.loads(bytes.fromhex(quote["tx_cbor"]))
    assert parts[1] == {}
    raw = bytes.fromhex(quote["tx_cbor"])
    # the wallet assembles the tx itself with a tag-258 witness set (what the fee was sized for)
    body, _, valid, aux = array_items(raw)
    signed = b"\x84" + body + bytes.fromhex(wallet.sign_tx(quote["tx_id"])) + valid + aux
    answer = gw.stack.submit_directly(signed)
    assert answer.get("result", {}).get("transaction", {}).get("id") == quote["tx_id"], answer
    confirmed = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/confirm", json={"tx_id": quote["tx_id"]})
    assert confirmed.status_code == 202, confirmed.text
    await gw.blocks(MIN_CONFIRMATIONS)
    view = await gw.wait_state(quote["quote_id"], {"delivered", "failed"})
    assert view["state"] == "delivered", view


async def test_hand_built_tx_meeting_the_rules_passes(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote = await gw.quote(wallet)
    tx_id, signed = hand_built_payment(gw.stack, wallet, quote_id=quote["quote_id"])
    assert tx_id != quote["tx_id"]
    answer = gw.stack.submit_directly(signed)
    assert "result" in answer, answer
    await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/confirm", json={"tx_id": tx_id})
    await gw.blocks(MIN_CONFIRMATIONS)
    view = await gw.wait_state(quote["quote_id"], {"delivered", "failed"})
    assert view["state"] == "delivered", view


async def test_the_seeds_two_calls(web3_gateway: Web3Gateway) -> None:
    """The seed's snippet: generate-art → blueprint → the wallet signs and submits → confirm-generation."""
    gw = web3_gateway
    wallet = _funded(gw.stack)
    response = await gw.client.post("/api/generate-art", json={"prompt": "a red fox", "address": wallet.bech32})
    assert response.status_code == 200, response.text
    blueprint = response.json()["transactionBlueprint"]
    body, _, valid, aux = array_items(bytes.fromhex(blueprint["tx_cbor"]))
    signed = b"\x84" + body + bytes.fromhex(wallet.sign_tx(blueprint["tx_id"])) + valid + aux
    assert "result" in gw.stack.submit_directly(signed)
    # The test client holds this loop for the whole of a request: the chain moves from another thread,
    # once the generation started speculatively (the tx is only in the mempool until then).
    def produce_blocks() -> None:
        deadline = time.monotonic() + 30
        while blueprint["quote_id"] not in gw.generator.started and time.monotonic() < deadline:
            time.sleep(0.02)
        gw.stack.devnet.blocks(MIN_CONFIRMATIONS)

    producer = threading.Thread(target=produce_blocks, daemon=True)
    producer.start()
    final = await gw.client.post("/api/confirm-generation", json={"prompt": "a red fox", "txId": blueprint["tx_id"]})
    producer.join(5)
    assert blueprint["quote_id"] in gw.generator.started
    assert final.status_code == 200, final.text
    assert final.json()["imageUrls"] == [f"/v1/images/{blueprint['quote_id']}-0.png"]
    again = await gw.client.post("/api/confirm-generation", json={"prompt": "a red fox", "txId": blueprint["tx_id"]})
    assert again.status_code == 200 and again.json()["imageUrls"] == final.json()["imageUrls"]  # idempotent
    poor = _funded(gw.stack, create=0)
    refused = await gw.client.post("/api/generate-art", json={"prompt": "a red fox", "address": poor.bech32})
    assert refused.status_code == 402
    assert refused.json()["error"] == "Insufficient CREATE tokens. Please purchase more to continue."
    wrong_prompt = await gw.client.post("/api/confirm-generation", json={"prompt": "other", "txId": blueprint["tx_id"]})
    assert wrong_prompt.status_code == 404
    # the tx id (and the payment reference in its metadata) are public: neither opens the quote
    no_prompt = await gw.client.post("/api/confirm-generation", json={"txId": blueprint["tx_id"]})
    assert no_prompt.status_code == 400 and no_prompt.json()["code"] == "prompt_required"
    ref = cbor2.loads(array_items(bytes.fromhex(blueprint["tx_cbor"]))[3])[1968]["quote"]
    assert ref != blueprint["quote_id"]
    assert (await gw.client.get(f"/v1/web3/quotes/{ref}")).status_code == 404


async def test_a_paid_quote_whose_generation_failed_runs_again_on_confirm(web3_gateway: Web3Gateway) -> None:
    """The token is spent on chain: a failed generation after payment is retried, never paid twice."""
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote = await gw.quote(wallet)
    original_run = gw.generator.run
    failures = [1]

    async def flaky(**kw: Any) -> list[str]:
        urls = await original_run(**kw)
        if failures:
            failures.pop()
            error = GatewayError("the image generator failed", code="inference_failed")
            error.status = 502
            raise error
        return urls

    gw.generator.run = flaky  # type: ignore[method-assign]
    await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit",
                         json={"witness_set": wallet.sign_tx(quote["tx_id"])})
    await gw.blocks(MIN_CONFIRMATIONS)
    failed = await gw.wait_state(quote["quote_id"], {"delivered", "failed"})
    assert failed["state"] == "failed" and failed["error"].startswith("inference_failed"), failed
    again = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/confirm", json={"tx_id": quote["tx_id"]})
    assert again.status_code == 202, again.text
    assert (await gw.wait_state(quote["quote_id"], {"delivered", "failed"}))["state"] == "delivered"

async def test_expired_quote_fails_and_cannot_be_submitted(chain_stack: ChainStack, make_gateway: MakeGateway) -> None:
    """Last in this module: it moves the devnet's tip past the quote's TTL (ahead of the clock)."""
    settings = web3_settings(chain_stack, web3_quote_ttl_s=60)
    app = await make_gateway(provide={PaidGenerator: FakeGenerator()}, **settings)
    async with AsyncTestClient(app=app.app) as client:
        gw = Web3Gateway(app, client, FakeGenerator(), chain_stack)
        wallet = _funded(chain_stack)
        unpaid, late = await gw.quote(wallet), await gw.quote(wallet, "late")
        response = await client.post(f"/v1/web3/quotes/{unpaid['quote_id']}/confirm", json={"tx_id": unpaid["tx_id"]})
        assert response.status_code == 202
        await gw.blocks(65)
        view = await gw.wait_state(unpaid["quote_id"], {"expired", "failed", "delivered"})
        assert view["state"] == "expired" and view["error"].startswith("quote_expired"), view
        response = await client.post(f"/v1/web3/quotes/{late['quote_id']}/submit",
                                     json={"witness_set": wallet.sign_tx(late["tx_id"])})
        assert response.status_code == 409 and response.json()["code"] == "quote_expired", response.text


"""The wallet path end to end over a real devnet and indexer: happy paths."""

from __future__ import annotations

import cbor2
from pycardano import (
    Address,
    Asset,
    AssetName,
    AuxiliaryData,
    Metadata,
    MultiAsset,
    OgmiosV6ChainContext,
    ScriptHash,
    TransactionBuilder,
    TransactionOutput,
    Value,
)

from common.cardano import AssetId
from gateway.web3.cborspan import array_items
from tests.gateway.web3.conftest import ASSET, MIN_CONFIRMATIONS, ChainStack, Web3Gateway
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


def hand_built_payment(stack: ChainStack, wallet: TestWallet, *, quote_id: str | None, asset: AssetId = ASSET,
                       to: str | None = None, quantity: int = 1) -> tuple[str, bytes]:
    """A tx the artist builds with pycardano's own builder (not ours): returns (tx id, signed CBOR)."""
    context = OgmiosV6ChainContext(host="127.0.0.1", port=stack.devnet.ogmios_port, secure=False)
    builder = TransactionBuilder(context)
    builder.add_input_address(wallet.address)
    multi = MultiAsset({ScriptHash(bytes.fromhex(asset.policy_id)): Asset({AssetName(asset.name_bytes): quantity})})
    builder.add_output(TransactionOutput(Address.from_primitive(to or stack.treasury.bech32), Value(2_000_000, multi)))
    if quote_id is not None:
        builder.auxiliary_data = AuxiliaryData(Metadata({1968: {"quote": quote_id}}))
    builder.ttl = int(stack.devnet.info()["tip"]["slot"]) + 300
    tx = builder.build_and_sign([wallet.payment], change_address=wallet.address)
    return str(tx.id), tx.to_cbor()


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

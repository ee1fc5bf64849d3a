"""Each attack on the wallet path refused with a clear error, one test each, over a real devnet + indexer."""

from __future__ import annotations

import asyncio
import hashlib

import cbor2
import pytest

from gateway.web3.cborspan import array_items
from gateway.web3.chain import GrpcChain, TxState
from gateway.web3.errors import Redeemed
from gateway.web3.seed import SeedWalletFlow
from gateway.web3.store import Web3Store
from tests.gateway.web3.conftest import FAKE_ASSET, MIN_CONFIRMATIONS, ChainStack, Web3Gateway, hand_built_payment
from tests.gateway.web3.wallet import TestWallet


def _funded(stack: ChainStack, **kw: int) -> TestWallet:
    wallet = TestWallet()
    stack.fund(wallet, **kw)
    return wallet


async def _login(gw: Web3Gateway, wallet: TestWallet) -> dict[str, str]:
    challenge = (await gw.client.get("/v1/auth/wallet/challenge", params={"address": wallet.bech32})).json()
    response = await gw.client.post("/v1/auth/wallet/verify",
                                    json={"address": wallet.bech32, **wallet.sign_data(challenge["payload"])})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _paid(gw: Web3Gateway, wallet: TestWallet, headers: dict[str, str] | None = None) -> dict[str, str]:
    """A quote paid through the server and delivered at depth."""
    quote = await gw.quote(wallet, headers=headers)
    response = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit",
                                    json={"witness_set": wallet.sign_tx(quote["tx_id"])}, headers=headers or {})
    assert response.status_code == 202, response.text
    await gw.blocks(MIN_CONFIRMATIONS)
    assert (await gw.wait_state(quote["quote_id"], {"delivered", "failed"}, headers=headers))["state"] == "delivered"
    return quote


async def _refused(gw: Web3Gateway, quote_id: str, tx_id: str, signed: bytes | None, reason: str) -> None:
    if signed is not None:
        assert "result" in gw.stack.submit_directly(signed)
    response = await gw.client.post(f"/v1/web3/quotes/{quote_id}/confirm", json={"tx_id": tx_id})
    assert response.status_code == 202, response.text
    await gw.blocks(MIN_CONFIRMATIONS)
    view = await gw.wait_state(quote_id, {"delivered", "failed", "expired"})
    assert view["state"] == "failed" and view["image_urls"] is None, view
    assert view["error"].startswith("payment_not_valid") and reason in view["error"], view
    assert quote_id not in gw.generator.released


async def test_no_create_is_402_and_too_little_ada_is_422(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    poor = _funded(gw.stack, create=0, fake=3)  # the same name under another policy does not count
    response = await gw.client.post("/v1/web3/quotes", json={"prompt": "p", "address": poor.bech32})
    assert response.status_code == 402
    assert response.json()["error"] == "Insufficient CREATE tokens. Please purchase more to continue."
    thin = _funded(gw.stack, lovelace=1_300_000, create=1)
    response = await gw.client.post("/v1/web3/quotes", json={"prompt": "p", "address": thin.bech32})
    assert response.status_code == 422 and response.json()["missing_lovelace"] > 0, response.text


async def test_client_utxos_are_checked_against_the_chain(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    forged = cbor2.dumps([[b"\x07" * 32, 0], [wallet.raw, [99_000_000, {}]]]).hex()  # a UTxO that does not exist
    quote = await gw.quote(wallet, utxos=[forged])
    inputs = cbor2.loads(bytes.fromhex(quote["tx_cbor"]))[0][0]
    assert [b"\x07" * 32, 0] not in inputs
    bad = await gw.client.post("/v1/web3/quotes", json={"prompt": "p", "address": wallet.bech32, "utxos": ["zz"]})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_utxo"


async def test_another_artists_tx_id_refused(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    alice, bob = _funded(gw.stack), _funded(gw.stack)
    paid = await _paid(gw, alice)
    bobs = await gw.quote(bob)
    await _refused(gw, bobs["quote_id"], paid["tx_id"], None, "another quote")


async def test_another_artists_quote_is_not_found(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    alice, bob = _funded(gw.stack), _funded(gw.stack)
    alice_headers, bob_headers = await _login(gw, alice), await _login(gw, bob)
    quote = await gw.quote(alice, headers=alice_headers)
    for headers in (bob_headers, {}):
        for path, body in (("confirm", {"tx_id": quote["tx_id"]}),
                           ("submit", {"witness_set": alice.sign_tx(quote["tx_id"])})):
            response = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/{path}", json=body, headers=headers)
            assert response.status_code == 404 and response.json()["code"] == "quote_not_found", response.text
    assert (await gw.client.get(f"/v1/web3/quotes/{quote['quote_id']}", headers=bob_headers)).status_code == 404


async def test_same_asset_name_under_another_policy_refused(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack, fake=5)
    quote = await gw.quote(wallet)
    tx_id, signed = hand_built_payment(gw.stack, wallet, quote_id=quote["quote_id"], asset=FAKE_ASSET)
    await _refused(gw, quote["quote_id"], tx_id, signed, "another policy")


async def test_payment_to_another_address_refused(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote = await gw.quote(wallet)
    tx_id, signed = hand_built_payment(gw.stack, wallet, quote_id=quote["quote_id"], to=gw.stack.elsewhere.bech32)
    await _refused(gw, quote["quote_id"], tx_id, signed, "another address")


async def test_missing_quote_id_refused(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote = await gw.quote(wallet)
    tx_id, signed = hand_built_payment(gw.stack, wallet, quote_id=None)
    await _refused(gw, quote["quote_id"], tx_id, signed, "no quote id")


async def test_wrong_quote_id_refused(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote, other = await gw.quote(wallet), await gw.quote(wallet, "another prompt")
    tx_id, signed = hand_built_payment(gw.stack, wallet, quote_id=other["quote_id"])
    await _refused(gw, quote["quote_id"], tx_id, signed, "another quote")


async def test_double_redemption_of_tx_or_quote_refused(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    paid = await _paid(gw, wallet)
    tx_id, signed = hand_built_payment(gw.stack, wallet, quote_id=paid["quote_id"])  # pays the same quote again
    assert "result" in gw.stack.submit_directly(signed)
    again = await gw.client.post(f"/v1/web3/quotes/{paid['quote_id']}/confirm", json={"tx_id": tx_id})
    assert again.status_code == 409 and again.json()["code"] == "already_redeemed", again.text
    store = Web3Store(gw.app.container.db)  # the unique constraints under the service, for a racing confirm
    other = await gw.quote(wallet, "second")
    await store.claim(other["quote_id"], paid["tx_id"])
    with pytest.raises(Redeemed):
        await store.redeem(other["quote_id"], paid["tx_id"], MIN_CONFIRMATIONS)
    with pytest.raises(Redeemed):
        await store.redeem(paid["quote_id"], tx_id, MIN_CONFIRMATIONS)
    await store.redeem(paid["quote_id"], paid["tx_id"], MIN_CONFIRMATIONS)  # the same redemption replayed: no-op


async def test_not_deep_enough_yet_gives_no_images(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote = await gw.quote(wallet)
    raw = bytes.fromhex(quote["tx_cbor"])
    body, _, valid, aux = array_items(raw)
    assert "result" in gw.stack.submit_directly(b"\x84" + body + bytes.fromhex(wallet.sign_tx(quote["tx_id"]))
                                                + valid + aux)
    await gw.blocks(MIN_CONFIRMATIONS - 1)
    gw.app.container.get(SeedWalletFlow).confirm_wait_s = 1.0
    response = await gw.client.post("/api/confirm-generation",
                                    json={"txId": quote["tx_id"], "quoteId": quote["quote_id"]})
    assert response.status_code == 202 and response.json()["state"] == "waiting", response.text
    assert response.json()["image_urls"] is None and quote["quote_id"] not in gw.generator.released


async def test_rollback_before_depth_goes_back_to_waiting(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote = await gw.quote(wallet)
    response = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit",
                                    json={"witness_set": wallet.sign_tx(quote["tx_id"])})
    assert response.status_code == 202
    chain = GrpcChain(gw.stack.indexer.grpc_target)  # the test's own client: the app's lives on the app's loop
    await gw.blocks(MIN_CONFIRMATIONS - 1)
    for _ in range(200):
        if (await chain.tx_status(quote["tx_id"])).depth == MIN_CONFIRMATIONS - 1:
            break
        await asyncio.sleep(0.05)
    await asyncio.to_thread(gw.stack.devnet.rollback, MIN_CONFIRMATIONS - 1, False)  # back to the mempool
    for _ in range(200):
        if (await chain.tx_status(quote["tx_id"])).state != TxState.CONFIRMED:
            break
        await asyncio.sleep(0.05)
    await gw.blocks(MIN_CONFIRMATIONS - 1)  # re-included: depth 2 again, still not releasable
    await asyncio.sleep(0.5)
    view = await gw.state(quote["quote_id"])
    assert view["state"] == "waiting" and quote["quote_id"] not in gw.generator.released, view
    await gw.blocks(1)
    assert (await gw.wait_state(quote["quote_id"], {"delivered", "failed"}))["state"] == "delivered"
    await chain.close()


@pytest.mark.parametrize("attack", ["malformed", "foreign_key", "extra_output", "re_encoded_body", "bad_signature"])
async def test_bad_witness_sets_refused(web3_gateway: Web3Gateway, attack: str) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote = await gw.quote(wallet)
    body, _, valid, aux = array_items(bytes.fromhex(quote["tx_cbor"]))
    if attack == "malformed":
        answer = "a1" + "00"
    elif attack == "foreign_key":
        answer = cbor2.dumps({0: [wallet.witness(quote["tx_id"]), TestWallet().witness(quote["tx_id"])]}).hex()
    elif attack == "bad_signature":
        answer = wallet.sign_tx("00" * 32)
    else:
        decoded = cbor2.loads(body)
        if attack == "extra_output":
            decoded[1].append([TestWallet().raw, 3_000_000])
        evil = cbor2.dumps(dict(sorted(decoded.items(), reverse=True)))
        evil_id = hashlib.blake2b(evil, digest_size=32).hexdigest()
        answer = (b"\x84" + evil + bytes.fromhex(wallet.sign_tx(evil_id)) + valid + aux).hex()
    response = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit", json={"witness_set": answer})
    assert response.status_code == 400 and response.json()["code"] == "invalid_witness_set", response.text
    assert (await gw.state(quote["quote_id"]))["state"] == "open"


async def test_ledger_refusal_is_a_clear_422(web3_gateway: Web3Gateway) -> None:
    """Two quotes over the same UTxOs: once the first is submitted, the second spends inputs already spent."""
    gw = web3_gateway
    wallet = _funded(gw.stack)
    first, second = await gw.quote(wallet), await gw.quote(wallet, "again")
    assert cbor2.loads(bytes.fromhex(first["tx_cbor"]))[0][0] == cbor2.loads(bytes.fromhex(second["tx_cbor"]))[0][0]
    ok = await gw.client.post(f"/v1/web3/quotes/{first['quote_id']}/submit",
                              json={"witness_set": wallet.sign_tx(first["tx_id"])})
    assert ok.status_code == 202
    refused = await gw.client.post(f"/v1/web3/quotes/{second['quote_id']}/submit",
                                   json={"witness_set": wallet.sign_tx(second["tx_id"])})
    assert refused.status_code == 422 and refused.json()["code"] == "ledger_refused", refused.text
    assert refused.json()["ledger_code"] == 3117 and "input" in refused.json()["error"].lower()
    assert (await gw.state(second["quote_id"]))["state"] == "open"


async def test_tx_dropped_by_a_rollback_is_sent_again_by_a_replayed_submit(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote = await gw.quote(wallet)
    body = {"witness_set": wallet.sign_tx(quote["tx_id"])}
    assert (await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit", json=body)).status_code == 202
    chain = GrpcChain(gw.stack.indexer.grpc_target)
    await gw.blocks(1)
    for _ in range(200):
        if (await chain.tx_status(quote["tx_id"])).state == TxState.CONFIRMED:
            break
        await asyncio.sleep(0.05)
    dropped = await asyncio.to_thread(gw.stack.devnet.rollback, 1, True)
    assert quote["tx_id"] in dropped["discarded_transaction_ids"], dropped
    for _ in range(200):
        if (await chain.tx_status(quote["tx_id"])).state in (TxState.UNKNOWN, TxState.ROLLED_BACK):
            break
        await asyncio.sleep(0.05)
    await chain.close()
    assert (await gw.state(quote["quote_id"]))["state"] == "waiting"
    again = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit", json=body)
    assert again.status_code == 202, again.text
    await gw.blocks(MIN_CONFIRMATIONS)
    assert (await gw.wait_state(quote["quote_id"], {"delivered", "failed"}))["state"] == "delivered"


async def test_open_quotes_per_address_are_capped(web3_gateway: Web3Gateway) -> None:
    from gateway.web3.quotes import MAX_OPEN_QUOTES_PER_ADDRESS

    gw = web3_gateway
    wallet = _funded(gw.stack)
    for i in range(MAX_OPEN_QUOTES_PER_ADDRESS):
        await gw.quote(wallet, f"prompt {i}")
    response = await gw.client.post("/v1/web3/quotes", json={"prompt": "one more", "address": wallet.bech32})
    assert response.status_code == 429 and response.json()["code"] == "too_many_quotes", response.text
    assert response.headers["Retry-After"] == "60"


async def test_submit_retried_after_the_tx_went_through_is_accepted(web3_gateway: Web3Gateway) -> None:
    """The first submission reached the node but its answer was lost: the retry finds the tx there."""
    gw = web3_gateway
    wallet = _funded(gw.stack)
    quote = await gw.quote(wallet)
    witness_set = wallet.sign_tx(quote["tx_id"])
    body, _, valid, aux = array_items(bytes.fromhex(quote["tx_cbor"]))
    assert "result" in gw.stack.submit_directly(b"\x84" + body + bytes.fromhex(witness_set) + valid + aux)
    retry = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit", json={"witness_set": witness_set})
    assert retry.status_code == 202 and retry.json()["state"] == "waiting", retry.text
    await gw.blocks(MIN_CONFIRMATIONS)
    assert (await gw.wait_state(quote["quote_id"], {"delivered", "failed"}))["state"] == "delivered"

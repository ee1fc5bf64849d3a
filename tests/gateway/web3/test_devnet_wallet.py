"""Interoperability: the devnet's CIP-30 test wallet (an independent implementation: its own CIP-8 and
witness code over ``cryptography``) signs in, quotes with its ``getUtxos()``, signs and pays."""

from __future__ import annotations

from typing import Any

from tests.gateway.web3.conftest import ASSET, MIN_CONFIRMATIONS, Web3Gateway


def _wallet(gw: Web3Gateway, name: str, method: str = "POST", path: str = "", body: Any = None) -> Any:
    status, answer = gw.stack.devnet.request(method, f"/devnet/wallets/{name}{path}", body)
    assert status == 200, answer
    return answer


async def test_devnet_cip30_wallet_signs_in_and_pays(web3_gateway: Web3Gateway) -> None:
    gw = web3_gateway
    wallet = _wallet(gw, "interop", body={})
    gw.stack.devnet.fund(wallet["address"], 20_000_000, {str(ASSET): 2})
    gw.stack.devnet.blocks(1)
    challenge = (await gw.client.get("/v1/auth/wallet/challenge", params={"address": wallet["address_hex"]})).json()
    stake_signed = _wallet(gw, "interop", path="/sign-data",
                           body={"address": wallet["reward_address_hex"], "payload": challenge["payload"]})
    refused = await gw.client.post("/v1/auth/wallet/verify", json={"address": wallet["address_hex"], **stake_signed})
    assert refused.status_code == 401, refused.text
    signed = _wallet(gw, "interop", path="/sign-data",
                     body={"address": wallet["address_hex"], "payload": challenge["payload"]})
    session = await gw.client.post("/v1/auth/wallet/verify", json={"address": wallet["address_hex"], **signed})
    assert session.status_code == 200, session.text
    headers = {"Authorization": f"Bearer {session.json()['access_token']}"}
    utxos = _wallet(gw, "interop", "GET", "/utxos")["utxos"]
    response = await gw.client.post("/v1/web3/quotes", headers=headers,
                                    json={"prompt": "interop", "address": wallet["address_hex"], "utxos": utxos})
    assert response.status_code == 201, response.text
    quote = response.json()
    witness_set = _wallet(gw, "interop", path="/sign-tx", body={"tx": quote["tx_cbor"], "partial_sign": True})
    submitted = await gw.client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit", headers=headers,
                                     json={"witness_set": witness_set["witness_set"]})
    assert submitted.status_code == 202, submitted.text
    await gw.blocks(MIN_CONFIRMATIONS)
    view = await gw.wait_state(quote["quote_id"], {"delivered", "failed"}, headers=headers)
    assert view["state"] == "delivered", view

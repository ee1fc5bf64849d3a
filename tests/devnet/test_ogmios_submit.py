"""submitTransaction / evaluateTransaction over Ogmios: results and ledger rejections in Ogmios' shapes."""

from __future__ import annotations

import json

import cbor2
import pytest

from tests.devnet.schemas import REFERENCE, validate_ogmios
from tests.support.devnet_protocols import signed_tx


async def _submit(client, raw: bytes) -> dict:
    message = await client.call("submitTransaction", {"transaction": {"cbor": raw.hex()}}, request_id="s")
    validate_ogmios("SubmitTransactionResponse", message)
    return message


async def test_a_valid_transaction_enters_the_mempool(ogmios_client, devnet_chain) -> None:
    raw = signed_tx(devnet_chain, 0)
    message = await _submit(ogmios_client, raw)
    tx_id = message["result"]["transaction"]["id"]
    assert [tx.id for tx in devnet_chain.mempool] == [tx_id]
    # a second submission spends the same (now mempool-spent) input
    again = await _submit(ogmios_client, raw)
    assert again["error"]["code"] in (3117, 3997)


def _rejections(chain) -> dict[str, tuple[bytes, int]]:
    key = chain.genesis.keys[0]
    ttl_past = {3: max(0, chain.tip.slot - 5)}
    return {
        "unknown input": (
            signed_tx(chain, 0, inputs=[("ab" * 32, 0)], outputs=[{0: key.address_bytes, 1: 2_000_000}]),
            3117,
        ),
        "bad signature": (signed_tx(chain, 0, sign=False), 3100),
        "fee too small": (signed_tx(chain, 0, fee=10), 3122),
        "expired": (signed_tx(chain, 0, extra_body=ttl_past), 3118),
        "network": (signed_tx(chain, 0, extra_body={15: 1}), 3124),
        "below min utxo": (signed_tx(chain, 0, outputs=[{0: key.address_bytes, 1: 1}]), 3125),
    }


@pytest.mark.parametrize(
    "case", ["unknown input", "bad signature", "fee too small", "expired", "network", "below min utxo"]
)
async def test_ledger_rejections_have_ogmios_codes_and_shapes(ogmios_client, devnet_chain, case: str) -> None:
    raw, code = _rejections(devnet_chain)[case]
    message = await _submit(ogmios_client, raw)
    assert message["error"]["code"] == code, message
    assert devnet_chain.mempool == []


async def test_unknown_inputs_win_over_value_and_fee_errors(ogmios_client, devnet_chain) -> None:
    key = devnet_chain.genesis.keys[0]
    raw = signed_tx(devnet_chain, 0, inputs=[("cd" * 32, 3)], outputs=[{0: key.address_bytes, 1: 5}], fee=1)
    message = await _submit(ogmios_client, raw)
    assert message["error"]["code"] == 3117
    assert message["error"]["data"] == {"unknownOutputReferences": [{"transaction": {"id": "cd" * 32}, "index": 3}]}


async def test_evaluate(ogmios_client, devnet_chain) -> None:
    raw = signed_tx(devnet_chain, 0)
    message = await ogmios_client.call("evaluateTransaction", {"transaction": {"cbor": raw.hex()}})
    validate_ogmios("EvaluateTransactionResponse", message)
    assert message["result"] == []
    assert devnet_chain.mempool == []  # evaluation never submits


@pytest.mark.parametrize(
    ("golden", "accepted"), [("Utxo_1", False), ("Utxo_2", True), ("Utxo_3", True), ("Utxo_4", False)]
)
async def test_evaluate_additional_utxo_goldens(ogmios_client, devnet_chain, golden: str, accepted: bool) -> None:
    additional = json.loads((REFERENCE / "ogmios" / "golden" / f"{golden}.json").read_text())
    raw = signed_tx(devnet_chain, 0)
    params = {"transaction": {"cbor": raw.hex()}, "additionalUtxo": additional}
    message = await ogmios_client.call("evaluateTransaction", params)
    if accepted:
        assert message["result"] == [], message
    else:
        assert message["error"]["code"] == -32602
        drop = {"Utxo_1": "d8184c820249", "Utxo_4": "820249"}[golden]
        assert "couldn't decode plutus script" in message["error"]["message"]
        assert f"Please drop '{drop}'" in message["error"]["message"]


async def test_evaluate_overlapping_additional_utxo(ogmios_client, devnet_chain) -> None:
    ref, out = devnet_chain.utxos_at(devnet_chain.genesis.keys[0].address_bytes)[0]
    entry = {
        "transaction": {"id": ref.tx_id},
        "index": ref.index,
        "address": out.address,
        "value": {"ada": {"lovelace": 1}},
    }
    raw = signed_tx(devnet_chain, 0)
    message = await ogmios_client.call(
        "evaluateTransaction", {"transaction": {"cbor": raw.hex()}, "additionalUtxo": [entry]}
    )
    validate_ogmios("EvaluateTransactionResponse", message)
    assert message["error"]["code"] == 3002


async def test_submit_over_http(ogmios_test_server, devnet_chain) -> None:
    from aiohttp import ClientSession

    raw = signed_tx(devnet_chain, 1)
    body = {"jsonrpc": "2.0", "method": "submitTransaction", "params": {"transaction": {"cbor": raw.hex()}}, "id": 3}
    async with ClientSession() as http, http.post(ogmios_test_server.make_url("/"), json=body) as resp:
        assert resp.status == 200
        message = await resp.json()
    validate_ogmios("SubmitTransactionResponse", message)
    assert message["result"]["transaction"]["id"] == devnet_chain.mempool[0].id
    # a body that is valid CBOR but not a transaction
    body["params"]["transaction"]["cbor"] = cbor2.dumps({"not": "a tx"}).hex()
    async with ClientSession() as http, http.post(ogmios_test_server.make_url("/"), json=body) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == -32602

"""Conformance against the reference schemas, end to end through the real devnet process.

Every kind of Ogmios response the devnet produces is validated against its ``…Response`` definition of
ogmios.json (v6.14, with cardano.json): queries, acquire/release, submit (success, ledger errors and
undecodable CBOR), evaluate, chain-sync across forced rollbacks, mempool monitoring and generic faults.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, WSMsgType
from pycardano import Address, PaymentSigningKey, TransactionBuilder, TransactionOutput

from tests.devnet.ogmios_context import OgmiosChainContext
from tests.devnet.schemas import validate_ogmios

pytestmark = pytest.mark.slow

_QUERIES: dict[str, Any] = {
    "queryNetwork/tip": None,
    "queryNetwork/blockHeight": None,
    "queryNetwork/startTime": None,
    "queryLedgerState/tip": None,
    "queryLedgerState/epoch": None,
    "queryLedgerState/eraStart": None,
    "queryLedgerState/eraSummaries": None,
    "queryLedgerState/protocolParameters": None,
    "queryLedgerState/utxo": None,
}


def _response_definition(method: str) -> str:
    name = "".join(part[0].upper() + part[1:] for part in method.split("/"))
    return f"{name}Response"


class _Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen: dict[str, int] = {}

    async def call(self, method: str, params: Any = None, request_id: Any = "c") -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            message["params"] = params
        await self.ws.send_str(orjson.dumps(message).decode())
        frame = await self.ws.receive(timeout=30)
        assert frame.type == WSMsgType.TEXT, frame
        response: dict[str, Any] = orjson.loads(frame.data)
        assert response["id"] == request_id
        validate_ogmios(_response_definition(method), response)
        kind = f"{method}:{'error ' + str(response['error']['code']) if 'error' in response else 'result'}"
        self.seen[kind] = self.seen.get(kind, 0) + 1
        return response


async def test_every_ogmios_response_kind_validates(devnet) -> None:
    devnet.blocks(3, fill="typical")
    key = devnet.genesis_key(0)
    devnet.fund(key["address"], 5_000_000, {"ab" * 28 + ".435245415445": 3})
    async with ClientSession() as http, http.ws_connect(devnet.ogmios_url) as ws:
        client = _Client(ws)
        for method, params in _QUERIES.items():
            await client.call(method, params)
        for era in ("byron", "shelley", "alonzo", "conway"):
            await client.call("queryNetwork/genesisConfiguration", {"era": era})
        await client.call("queryLedgerState/utxo", {"addresses": [key["address"]]})
        utxo = (await client.call("queryLedgerState/utxo", {"addresses": [key["address"]]}))["result"]
        refs = [{"transaction": u["transaction"], "index": u["index"]} for u in utxo]
        await client.call("queryLedgerState/utxo", {"outputReferences": refs})

        tip = (await client.call("queryNetwork/tip"))["result"]
        await client.call("acquireLedgerState", {"point": tip})
        await client.call("queryLedgerState/utxo")
        await client.call("releaseLedgerState")
        await client.call("acquireLedgerState", {"point": {"slot": 1, "id": "00" * 32}})

        await _mempool_round(client, devnet)
        await _submissions(client, devnet, key)
        await _chain_sync_across_rollbacks(client, devnet)
    assert any(kind.startswith("submitTransaction:error 31") for kind in client.seen), client.seen
    assert "nextBlock:result" in client.seen and "findIntersection:error 1000" in client.seen


async def _mempool_round(client: _Client, devnet) -> None:
    for method in ("nextTransaction", "sizeOfMempool", "releaseMempool"):
        await client.call(method)  # 4000 before acquire
    await client.call("hasTransaction", {"id": "00" * 32})
    await client.call("acquireMempool")
    await client.call("sizeOfMempool")
    await client.call("hasTransaction", {"id": "00" * 32})
    while (await client.call("nextTransaction", {"fields": "all"}))["result"]["transaction"] is not None:
        pass
    await client.call("releaseMempool")
    devnet.blocks(1)


async def _submissions(client: _Client, devnet, key: dict[str, str]) -> None:
    context = await OgmiosChainContext.create(client, (key["address"],))
    signing_key = PaymentSigningKey.from_cbor(key["signing_key_cbor"])
    sender = Address.from_primitive(key["address"])
    builder = TransactionBuilder(context)
    builder.add_input_address(sender)
    builder.add_output(TransactionOutput(sender, 2_000_000))
    tx = builder.build_and_sign([signing_key], change_address=sender)
    await client.call("evaluateTransaction", {"transaction": {"cbor": tx.to_cbor_hex()}})
    accepted = await client.call("submitTransaction", {"transaction": {"cbor": tx.to_cbor_hex()}})
    assert accepted["result"]["transaction"]["id"] == str(tx.id)
    replay = await client.call("submitTransaction", {"transaction": {"cbor": tx.to_cbor_hex()}})
    assert replay["error"]["code"] in (3117, 3997)
    await client.call("submitTransaction", {"transaction": {"cbor": "84a0a0f5f6"}})
    await client.call("evaluateTransaction", {"transaction": {"cbor": "deadbeef"}})
    devnet.blocks(1)


async def _chain_sync_across_rollbacks(client: _Client, devnet) -> None:
    await client.call("findIntersection", {"points": [{"slot": 1, "id": "00" * 32}]})
    assert (await client.call("findIntersection", {"points": ["origin"]}))["result"]["intersection"] == "origin"
    tip = (await client.call("nextBlock"))["result"]["tip"]
    assert (await client.call("queryNetwork/blockHeight"))["result"] == tip["height"]
    heights = []
    for _ in range(tip["height"]):
        result = (await client.call("nextBlock"))["result"]
        assert result["direction"] == "forward"
        heights.append(result["block"]["height"])
    assert heights == list(range(1, tip["height"] + 1))
    # a forced rollback of 2 blocks, then a different branch of 3
    devnet.rollback(2, drop_transactions=True)
    devnet.fund(devnet.genesis_key(1)["address"], 3_000_000)
    devnet.blocks(3)
    backward = (await client.call("nextBlock"))["result"]
    assert backward["direction"] == "backward"
    assert backward["tip"]["height"] == tip["height"] + 1
    forwards = [(await client.call("nextBlock"))["result"] for _ in range(3)]
    assert [f["block"]["height"] for f in forwards] == [tip["height"] - 1, tip["height"], tip["height"] + 1]
    assert forwards[0]["block"]["ancestor"] == backward["point"]["id"]

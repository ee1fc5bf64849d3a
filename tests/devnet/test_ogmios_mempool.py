"""Mempool monitoring: snapshots, 4000 before acquire, blocking re-acquire, nextTransaction/hasTransaction."""

from __future__ import annotations

import pytest

from tests.devnet.schemas import validate_ogmios

_RESPONSES = {
    "acquireMempool": "AcquireMempoolResponse",
    "nextTransaction": "NextTransactionResponse",
    "hasTransaction": "HasTransactionResponse",
    "sizeOfMempool": "SizeOfMempoolResponse",
    "releaseMempool": "ReleaseMempoolResponse",
}


async def _call(client, method: str, params=None) -> dict:
    message = await client.call(method, params, request_id=method)
    validate_ogmios(_RESPONSES[method], message)
    return message


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("nextTransaction", None),
        ("hasTransaction", {"id": "00" * 32}),
        ("sizeOfMempool", None),
        ("releaseMempool", None),
    ],
)
async def test_must_acquire_first(ogmios_client, method: str, params) -> None:
    message = await _call(ogmios_client, method, params)
    assert message["error"] == {"code": 4000, "message": "You must acquire a mempool snapshot prior to accessing it."}


async def test_snapshot_walk(ogmios_client, devnet_chain) -> None:
    first = devnet_chain.fund(devnet_chain.genesis.keys[0].address, 3_000_000)
    second = devnet_chain.fund(devnet_chain.genesis.keys[1].address, 4_000_000)
    acquired = await _call(ogmios_client, "acquireMempool")
    assert acquired["result"] == {"acquired": "mempool", "slot": devnet_chain.tip.slot + 1}  # the snapshot's slot
    size = (await _call(ogmios_client, "sizeOfMempool"))["result"]
    assert size["transactions"] == {"count": 2}
    assert size["currentSize"] == {"bytes": sum(tx.size for tx in devnet_chain.mempool)}
    assert size["maxCapacity"] == {"bytes": devnet_chain.mempool_capacity_bytes()}
    assert (await _call(ogmios_client, "hasTransaction", {"id": second}))["result"] is True
    assert (await _call(ogmios_client, "hasTransaction", {"id": "ef" * 32}))["result"] is False
    assert (await _call(ogmios_client, "nextTransaction"))["result"] == {"transaction": {"id": first}}
    full = (await _call(ogmios_client, "nextTransaction", {"fields": "all"}))["result"]["transaction"]
    assert full["id"] == second and full["outputs"]
    assert (await _call(ogmios_client, "nextTransaction"))["result"] == {"transaction": None}
    assert (await _call(ogmios_client, "nextTransaction"))["result"] == {"transaction": None}
    assert (await _call(ogmios_client, "releaseMempool"))["result"] == {"released": "mempool"}
    assert (await _call(ogmios_client, "sizeOfMempool"))["error"]["code"] == 4000


async def test_reacquire_waits_until_the_mempool_changes(ogmios_client, devnet_chain) -> None:
    await _call(ogmios_client, "acquireMempool")
    await ogmios_client.send("acquireMempool", request_id="second")
    # the second acquire is pending: a query on another mini-protocol overtakes it
    assert (await ogmios_client.call("queryNetwork/tip", request_id="q"))["id"] == "q"
    tx_id = devnet_chain.fund(devnet_chain.genesis.keys[0].address, 3_000_000)
    message = await ogmios_client.receive()
    validate_ogmios("AcquireMempoolResponse", message)
    assert message["id"] == "second"
    assert (await _call(ogmios_client, "nextTransaction"))["result"] == {"transaction": {"id": tx_id}}
    # a block empties the mempool: that is a change too
    await ogmios_client.send("acquireMempool", request_id="third")
    devnet_chain.produce_blocks(1)
    assert (await ogmios_client.receive())["id"] == "third"
    assert (await _call(ogmios_client, "sizeOfMempool"))["result"]["transactions"] == {"count": 0}


async def test_bad_fields(ogmios_client) -> None:
    await _call(ogmios_client, "acquireMempool")
    message = await ogmios_client.call("nextTransaction", {"fields": "some"})
    assert message["error"]["code"] == -32602

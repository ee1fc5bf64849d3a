"""Ledger-state and network queries, acquire / release, and /health."""

from __future__ import annotations

from aiohttp import ClientSession

from devnet.genesis import Genesis
from tests.devnet.schemas import validate_ogmios
from tests.support.devnet_protocols import SYSTEM_START, new_chain


async def _query(client, method: str, params=None) -> dict:
    message = await client.call(method, params, request_id=method)
    name = "".join(part[0].upper() + part[1:] for part in method.split("/"))
    validate_ogmios(f"{name}Response", message)
    assert message["id"] == method
    return message


async def test_network_queries(ogmios_client, devnet_chain) -> None:
    assert (await _query(ogmios_client, "queryNetwork/tip"))["result"] == devnet_chain.tip_point()
    assert (await _query(ogmios_client, "queryNetwork/blockHeight"))["result"] == devnet_chain.tip.height
    assert (await _query(ogmios_client, "queryNetwork/startTime"))["result"] == "2024-01-01T00:00:00Z"
    for era in ("byron", "shelley", "alonzo", "conway"):
        result = (await _query(ogmios_client, "queryNetwork/genesisConfiguration", {"era": era}))["result"]
        assert result["era"] == era


async def test_ledger_state_queries(ogmios_client, devnet_chain) -> None:
    assert (await _query(ogmios_client, "queryLedgerState/tip"))["result"] == devnet_chain.tip_point()
    assert (await _query(ogmios_client, "queryLedgerState/epoch"))["result"] == devnet_chain.epoch()
    assert (await _query(ogmios_client, "queryLedgerState/eraStart"))["result"]["slot"] == 0
    summaries = (await _query(ogmios_client, "queryLedgerState/eraSummaries"))["result"]
    assert summaries[-1]["parameters"]["slotLength"] == {"milliseconds": 1000}
    params = (await _query(ogmios_client, "queryLedgerState/protocolParameters"))["result"]
    assert params["minFeeCoefficient"] == devnet_chain.params.min_fee_coefficient


async def test_utxo_queries(ogmios_client, devnet_chain) -> None:
    key = devnet_chain.genesis.keys[0]
    by_address = (await _query(ogmios_client, "queryLedgerState/utxo", {"addresses": [key.address]}))["result"]
    expected = devnet_chain.utxos_at(key.address_bytes)
    assert [(e["transaction"]["id"], e["index"]) for e in by_address] == [(r.tx_id, r.index) for r, _ in expected]
    assert all(e["address"] == key.address for e in by_address)
    assert sum(e["value"]["ada"]["lovelace"] for e in by_address) == sum(o.lovelace for _, o in expected)

    refs = [{"transaction": {"id": e["transaction"]["id"]}, "index": e["index"]} for e in by_address]
    missing = {"transaction": {"id": "00" * 32}, "index": 9}
    by_ref = (await _query(ogmios_client, "queryLedgerState/utxo", {"outputReferences": [*refs, missing]}))["result"]
    assert by_ref == by_address

    whole = (await _query(ogmios_client, "queryLedgerState/utxo"))["result"]
    assert len(whole) == len(devnet_chain.utxo)
    keys = [(e["transaction"]["id"], e["index"]) for e in whole]
    assert keys == sorted(keys)


async def test_acquire_and_release(ogmios_client, devnet_chain) -> None:
    key = devnet_chain.genesis.keys[1]
    tip = devnet_chain.tip
    message = await _query(ogmios_client, "acquireLedgerState", {"point": {"slot": tip.slot, "id": tip.id}})
    assert message["result"] == {"acquired": "ledgerState", "point": {"slot": tip.slot, "id": tip.id}}
    before = (await _query(ogmios_client, "queryLedgerState/utxo", {"addresses": [key.address]}))["result"]

    devnet_chain.fund(key.address, 7_000_000)
    devnet_chain.produce_blocks(2)
    # the acquired state still answers for the acquired point
    assert (await _query(ogmios_client, "queryLedgerState/tip"))["result"] == {"slot": tip.slot, "id": tip.id}
    assert (await _query(ogmios_client, "queryLedgerState/utxo", {"addresses": [key.address]}))["result"] == before

    assert (await _query(ogmios_client, "releaseLedgerState"))["result"] == {"released": "ledgerState"}
    after = (await _query(ogmios_client, "queryLedgerState/utxo", {"addresses": [key.address]}))["result"]
    assert len(after) == len(before) + 1

    unknown = await _query(ogmios_client, "acquireLedgerState", {"point": {"slot": 5, "id": "cd" * 32}})
    assert unknown["error"] == {
        "code": 2000,
        "message": "Failed to acquire requested point.",
        "data": "Acquired point no longer exist.",
    }


async def test_acquired_state_rolled_away_expires(ogmios_client, devnet_chain) -> None:
    tip = devnet_chain.tip
    await _query(ogmios_client, "acquireLedgerState", {"point": {"slot": tip.slot, "id": tip.id}})
    devnet_chain.rollback(1, drop_transactions=True)
    message = await _query(ogmios_client, "queryLedgerState/utxo")
    assert message["error"]["code"] == 2003


async def test_acquiring_a_point_older_than_k_blocks_fails() -> None:
    from aiohttp.test_utils import TestServer

    from devnet.chain import Chain
    from devnet.ogmios.server import build_app
    from tests.support.devnet_protocols import OgmiosClient

    chain = Chain.create(Genesis(seed="k", system_start=SYSTEM_START, security_param=2))
    chain.produce_blocks(4)
    server = TestServer(build_app(chain))
    await server.start_server()
    try:
        async with ClientSession() as http, http.ws_connect(server.make_url("/")) as ws:
            client = OgmiosClient(ws)
            old = chain.blocks[0]
            message = await _query(client, "acquireLedgerState", {"point": {"slot": old.slot, "id": old.id}})
            assert message["error"]["code"] == 2000
            assert message["error"]["data"] == "Acquired point is now too old."
            recent = chain.blocks[-2]
            message = await _query(client, "acquireLedgerState", {"point": {"slot": recent.slot, "id": recent.id}})
            assert message["result"]["point"]["id"] == recent.id
    finally:
        await server.close()


async def test_health_and_metrics(ogmios_test_server, devnet_chain) -> None:
    async with ClientSession() as http:
        async with http.get(ogmios_test_server.make_url("/health")) as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["lastKnownTip"] == devnet_chain.tip_json()
        assert body["networkSynchronization"] == 1.0 and body["connectionStatus"] == "connected"
        assert body["currentEra"] == "conway"
        assert set(body["metrics"]) >= {"activeConnections", "totalConnections", "sessionDurations", "totalMessages"}
        async with http.get(ogmios_test_server.make_url("/metrics")) as resp:
            assert resp.status == 200 and "ogmios_total_connections" in await resp.text()


def test_new_chain_helper_is_deterministic() -> None:
    assert new_chain(0, seed="same").tip.id == new_chain(0, seed="same").tip.id

"""The Ogmios client against a real WebSocket server on loopback replaying reference vectors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve

from indexer.errors import OgmiosRpcError, OgmiosTimeout, OgmiosUnavailable
from indexer.ogmios import OgmiosClient
from tests.indexer.fakes import FakeOgmios, RpcFault, vector


@pytest.fixture
async def ogmios() -> AsyncIterator[FakeOgmios]:
    server = await FakeOgmios().start()
    yield server
    await server.stop()


def client_for(url: str, **kwargs: float) -> OgmiosClient:
    return OgmiosClient(url, request_timeout_s=kwargs.pop("timeout", 2.0), connect_timeout_s=1.0,
                        max_backoff_s=kwargs.pop("backoff", 0.2), **kwargs)  # type: ignore[arg-type]


async def test_request_returns_result_and_ids_are_distinct(ogmios: FakeOgmios) -> None:
    client = client_for(ogmios.url)
    params = await client.request("queryLedgerState/protocolParameters")
    assert params == vector("QueryLedgerStateProtocolParameters", 0)["result"]
    assert await client.request("queryLedgerState/epoch") == 7
    assert client.generation == 1 and client.in_flight == 0
    await client.close()


async def test_pipelined_requests_resolve_in_order(ogmios: FakeOgmios) -> None:
    await ogmios.chain.add(count=60)
    client = client_for(ogmios.url)
    await client.connect()
    futures = await client.send_many([("nextBlock", None)] * 61)
    results = [await client.wait(f, "nextBlock") for f in futures]
    assert results[0]["direction"] == "backward" and results[0]["point"] == "origin"
    assert [r["block"]["height"] for r in results[1:]] == list(range(60))
    await client.close()


async def test_repeated_requests_go_out_together_and_resolve_in_order(ogmios: FakeOgmios) -> None:
    await ogmios.chain.add(count=30)
    client = client_for(ogmios.url)
    await client.connect()
    futures = await client.send_repeated("nextBlock", 31)
    results = [await client.wait(f, "nextBlock") for f in futures]
    assert [r["block"]["height"] for r in results[1:]] == list(range(30))
    await ogmios.drop_connections()
    await client.closed_event.wait()
    with pytest.raises(OgmiosUnavailable):
        await client.send_repeated("nextBlock", 2)
    await client.close()


async def test_rpc_error_is_typed_with_code_and_data(ogmios: FakeOgmios) -> None:
    refusal = vector("SubmitTransactionResponse", 0)["error"]

    def submit(params: object) -> None:
        raise RpcFault(refusal["code"], refusal["message"], refusal["data"])

    ogmios.handlers["submitTransaction"] = submit
    client = client_for(ogmios.url)
    with pytest.raises(OgmiosRpcError) as info:
        await client.request("submitTransaction", {"transaction": {"cbor": "00"}})
    assert info.value.code == refusal["code"] and info.value.data == refusal["data"]
    assert info.value.is_ledger_refusal
    with pytest.raises(OgmiosRpcError) as unknown:
        await client.request("noSuchMethod")
    assert unknown.value.code == -32601
    await client.close()


async def test_timeout_then_late_answer_is_ignored(ogmios: FakeOgmios) -> None:
    ogmios.delay_s["queryLedgerState/epoch"] = 0.5
    client = client_for(ogmios.url)
    with pytest.raises(OgmiosTimeout):
        await client.request("queryLedgerState/epoch", timeout_s=0.05)
    ogmios.delay_s.clear()
    assert await client.request("queryLedgerState/tip") == "origin"  # the late epoch answer is dropped
    assert client.in_flight == 0
    await client.close()


async def test_dropped_connection_fails_in_flight_then_reconnects(ogmios: FakeOgmios) -> None:
    client = client_for(ogmios.url)
    await client.connect()
    waiting = await client.send("nextBlock")  # backward to origin
    assert (await client.wait(waiting, "nextBlock"))["direction"] == "backward"
    parked = await client.send("nextBlock")  # waits at the (empty) tip
    await asyncio.sleep(0.05)
    await ogmios.drop_connections()
    with pytest.raises(OgmiosUnavailable):
        await client.wait(parked, "nextBlock")
    await client.closed_event.wait()
    assert not client.connected
    assert await client.request("queryLedgerState/epoch") == 7  # lazily reconnected
    assert client.generation == 2
    await client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_fails_fast_and_backs_off() -> None:
    client = client_for(f"ws://127.0.0.1:{free_port()}", backoff=5.0)
    with pytest.raises(OgmiosUnavailable, match="cannot connect"):
        await client.request("queryLedgerState/epoch")
    with pytest.raises(OgmiosUnavailable, match="retrying shortly"):  # inside the backoff window: no new attempt
        await client.request("queryLedgerState/epoch")


async def test_connect_with_backoff_waits_for_the_server() -> None:
    port = free_port()
    client = client_for(f"ws://127.0.0.1:{port}", backoff=0.1)
    connecting = asyncio.create_task(client.connect_with_backoff())
    await asyncio.sleep(0.3)
    assert not connecting.done()
    server = await FakeOgmios().start(port)
    await asyncio.wait_for(connecting, 5)
    assert client.connected
    await client.close()
    await server.stop()


async def test_malformed_message_drops_connection_without_hanging() -> None:
    async def garbage(conn: ServerConnection) -> None:
        async for _ in conn:
            await conn.send("{not json")

    server = await serve(garbage, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    client = client_for(f"ws://127.0.0.1:{port}")
    with pytest.raises(OgmiosUnavailable, match="unreadable"):
        await client.request("queryLedgerState/epoch", idempotent=False)
    await client.close()
    server.close()
    await server.wait_closed()

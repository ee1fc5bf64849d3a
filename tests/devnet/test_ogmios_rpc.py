"""The JSON-RPC envelope and bad input: every malformed request gets the protocol's error, never a crash."""

from __future__ import annotations

import contextlib
import json

import orjson
import pytest
from aiohttp import ClientSession, WSMsgType

from tests.devnet.schemas import REFERENCE, validate_ogmios


async def _raw(ogmios_client, text: str | bytes) -> dict:
    if isinstance(text, bytes):
        await ogmios_client.ws.send_bytes(text)
    else:
        await ogmios_client.ws.send_str(text)
    return await ogmios_client.receive()


async def test_success_envelope_key_order_and_id_echo(ogmios_client) -> None:
    for request_id in (None, 7, "abc", {"nested": [1, 2]}, [1]):
        message = await ogmios_client.ws.send_str(
            json.dumps({"jsonrpc": "2.0", "method": "queryNetwork/blockHeight", "id": request_id})
        )
        raw = (await ogmios_client.ws.receive()).data
        message = json.loads(raw)
        assert list(message) == ["jsonrpc", "method", "result", "id"]
        assert message["id"] == request_id
    # the id is optional: the server writes null
    message = await _raw(ogmios_client, '{"jsonrpc":"2.0","method":"queryNetwork/tip"}')
    assert message["id"] is None
    validate_ogmios("QueryNetworkTipResponse", message)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", -32700),
        (b"\xff\xfe\x00garbage", -32700),
        ("[1, 2, 3]", -32600),
        ('"just a string"', -32600),
        ('{"method":"queryNetwork/tip","id":1}', -32600),
        ('{"jsonrpc":"1.0","method":"queryNetwork/tip","id":1}', -32600),
        ('{"jsonrpc":"2.0","method":42,"id":1}', -32600),
        ('{"jsonrpc":"2.0","method":"fooBar","id":1}', -32601),
        ('{"jsonrpc":"2.0","method":"queryLedgerState/stakePools","id":1}', -32601),
        ('{"jsonrpc":"2.0","method":"findIntersection","params":{"points":[{"slot":"x"}]},"id":1}', -32602),
        ('{"jsonrpc":"2.0","method":"findIntersection","params":{"points":"origin"},"id":1}', -32602),
        ('{"jsonrpc":"2.0","method":"findIntersection","id":1}', -32602),
        ('{"jsonrpc":"2.0","method":"nextBlock","params":{"x":1},"id":1}', -32602),
        ('{"jsonrpc":"2.0","method":"queryNetwork/genesisConfiguration","params":{"era":"x"},"id":1}', -32602),
        ('{"jsonrpc":"2.0","method":"queryLedgerState/utxo","params":{"addresses":["nope"]},"id":1}', -32602),
        ('{"jsonrpc":"2.0","method":"hasTransaction","params":{"id":"zz"},"id":1}', -32602),
        ('{"jsonrpc":"2.0","method":"submitTransaction","params":{},"id":1}', -32602),
        ('{"jsonrpc":"2.0","method":"acquireLedgerState","params":{"point":7},"id":1}', -32602),
    ],
)
async def test_generic_faults(ogmios_client, frame: str | bytes, code: int) -> None:
    message = await _raw(ogmios_client, frame)
    assert message["error"]["code"] == code, message
    validate_ogmios("RpcErrorFixed", {k: v for k, v in message.items() if k != "method"})
    if code in (-32600, -32601, -32602) and '"id":1' in str(frame):
        assert message["id"] == 1
    # the connection survives every fault
    assert "result" in await ogmios_client.call("queryNetwork/tip")


@pytest.mark.parametrize(
    "cbor_hex",
    ["zz", "", "00", "84a0a0f5", "84a0a0f5f600", "8480a0f5f6", "9fa0", "a1" * 3000, "5bffffffffffffffff"],
)
async def test_undecodable_transactions_get_per_era_data(ogmios_client, cbor_hex: str) -> None:
    for method in ("submitTransaction", "evaluateTransaction"):
        message = await ogmios_client.call(method, {"transaction": {"cbor": cbor_hex}}, request_id="x")
        assert message["error"]["code"] == -32602, message
        assert set(message["error"]["data"]) == {"shelley", "allegra", "mary", "alonzo", "babbage", "conway"}
        validate_ogmios(f"{method[0].upper()}{method[1:]}Response", message)
        assert message["id"] == "x"


async def test_huge_frame_closes_with_1009_and_the_server_keeps_serving(ogmios_test_server) -> None:
    async with ClientSession() as http:
        async with http.ws_connect(ogmios_test_server.make_url("/"), max_msg_size=0) as ws:
            huge = '{"jsonrpc":"2.0","method":"submitTransaction","params":{"transaction":{"cbor":"'
            huge += "00" * (3 * 1024 * 1024) + '"}}}'
            with contextlib.suppress(ConnectionError):  # the server may hang up mid-frame
                await ws.send_str(huge)
            message = await ws.receive(timeout=30)
            assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR)
            assert ws.close_code in (1009, None) or message.data == 1009
        async with http.ws_connect(ogmios_test_server.make_url("/")) as ws:
            await ws.send_str('{"jsonrpc":"2.0","method":"queryNetwork/tip","id":1}')
            assert "result" in orjson.loads((await ws.receive(timeout=10)).data)


async def test_http_post(ogmios_test_server, devnet_chain) -> None:
    async with ClientSession() as http:
        url = ogmios_test_server.make_url("/")
        async with http.post(url, data='{"jsonrpc":"2.0","method":"queryNetwork/tip","id":"h"}') as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            body = await resp.json()
            assert body["result"] == devnet_chain.tip_point() and body["id"] == "h"
        async with http.post(url, data='{"jsonrpc":"2.0","method":"nope","id":"h"}') as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == -32601
        async with http.post(url, data="garbage") as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == -32700
        async with http.post(url, data=b"x" * (5 * 1024 * 1024)) as resp:
            assert resp.status == 413
            assert (await resp.json())["error"]["code"] == -32600
        async with http.get(url) as resp:
            assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]


_REQUEST_VECTORS = {
    "FindIntersection": "FindIntersectionResponse",
    "NextBlock": "NextBlockResponse",
    "HasTransaction": "HasTransactionResponse",
    "AcquireLedgerStateRequest": "AcquireLedgerStateResponse",
    "AcquireMempool": "AcquireMempoolResponse",
    "NextTransaction": "NextTransactionResponse",
    "ReleaseLedgerState": "ReleaseLedgerStateResponse",
    "ReleaseMempoolRequest": "ReleaseMempoolResponse",
    "SizeOfMempool": "SizeOfMempoolResponse",
}


@pytest.mark.parametrize("folder", sorted(_REQUEST_VECTORS))
async def test_ogmios_request_vectors_are_accepted(ogmios_client, folder: str) -> None:
    """Every request vector shipped with Ogmios is understood (no -326xx) and answered in schema."""
    for path in sorted((REFERENCE / "ogmios" / "test-vectors" / folder).glob("*.json")):
        vector = path.read_text()
        # a second acquire would (rightly) wait for the mempool to change: release first
        await ogmios_client.call("releaseMempool")
        if folder in ("HasTransaction", "NextTransaction", "SizeOfMempool", "ReleaseMempoolRequest"):
            await ogmios_client.call("acquireMempool")
        message = await _raw(ogmios_client, vector)
        assert message.get("error", {}).get("code", 0) not in range(-32700, -32599), (path.name, message)
        assert message["id"] == json.loads(vector).get("id")
        validate_ogmios(_REQUEST_VECTORS[folder], message)


async def test_idle_connections_are_closed_but_not_while_a_request_waits(devnet_chain) -> None:
    from aiohttp.test_utils import TestServer

    from devnet.ogmios.server import build_app

    server = TestServer(build_app(devnet_chain, idle_timeout_s=0.3))
    await server.start_server()
    try:
        async with ClientSession() as http:
            async with http.ws_connect(server.make_url("/")) as ws:
                message = await ws.receive(timeout=10)  # nothing sent: the server hangs up
                assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
            async with http.ws_connect(server.make_url("/")) as ws:
                tip = {"slot": devnet_chain.tip.slot, "id": devnet_chain.tip.id}
                request = {"jsonrpc": "2.0", "method": "findIntersection", "params": {"points": [tip]}}
                await ws.send_str(json.dumps(request))
                await ws.receive(timeout=10)
                await ws.send_str('{"jsonrpc":"2.0","method":"nextBlock","id":"b"}')
                assert json.loads((await ws.receive(timeout=10)).data)["result"]["direction"] == "backward"
                await ws.send_str('{"jsonrpc":"2.0","method":"nextBlock","id":"t"}')  # waits at the tip
                with contextlib.suppress(TimeoutError):
                    await ws.receive(timeout=1.0)  # well past the idle timeout: still open
                assert not ws.closed
                devnet_chain.produce_blocks(1)
                assert json.loads((await ws.receive(timeout=10)).data)["id"] == "t"
    finally:
        await server.close()


async def test_connection_limit(devnet_chain) -> None:
    from aiohttp import WSServerHandshakeError
    from aiohttp.test_utils import TestServer

    from devnet.ogmios.server import build_app

    server = TestServer(build_app(devnet_chain, max_connections=1))
    await server.start_server()
    try:
        async with ClientSession() as http, http.ws_connect(server.make_url("/")) as first:
            await first.send_str('{"jsonrpc":"2.0","method":"queryNetwork/tip"}')
            await first.receive(timeout=10)
            with pytest.raises(WSServerHandshakeError) as refused:
                await http.ws_connect(server.make_url("/"))
            assert refused.value.status == 503
    finally:
        await server.close()

"""Fixtures shared by the Ogmios/Kupo protocol tests: a real devnet Chain and in-process servers.

Import the fixtures you use into a test module (``from tests.devnet.protocol_fixtures import chain``).
The in-process servers run the real aiohttp applications on loopback (aiohttp's TestServer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestServer

from devnet.chain import Chain
from devnet.genesis import Genesis
from devnet.ogmios.server import build_app as build_ogmios_app

__all__ = ["OgmiosClient", "chain", "new_chain", "ogmios", "ogmios_server"]

SYSTEM_START = datetime(2024, 1, 1, tzinfo=UTC)


def new_chain(typical_blocks: int = 3, seed: str = "protocol-tests") -> Chain:
    """A fresh devnet chain: the distribution block, a faucet payment with an asset, typical blocks."""
    chain = Chain.create(Genesis(seed=seed, system_start=SYSTEM_START))
    if typical_blocks:
        chain.produce_blocks(typical_blocks, fill="typical")
    return chain


@pytest.fixture
def chain() -> Chain:
    return new_chain()


@pytest.fixture
async def ogmios_server(chain: Chain) -> AsyncIterator[TestServer]:
    server = TestServer(build_ogmios_app(chain))
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


class OgmiosClient:
    """A tiny JSON-RPC client over one WebSocket (requests may be pipelined with ``send``)."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, method: str, params: Any = None, request_id: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        message["id"] = request_id
        await self.ws.send_str(orjson.dumps(message).decode())

    async def receive(self, timeout_s: float = 10.0) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout_s)
        assert message.type == WSMsgType.TEXT, message
        decoded: dict[str, Any] = orjson.loads(message.data)
        return decoded

    async def call(self, method: str, params: Any = None, request_id: Any = None) -> dict[str, Any]:
        await self.send(method, params, request_id)
        return await self.receive()


@pytest.fixture
async def ogmios(ogmios_server: TestServer) -> AsyncIterator[OgmiosClient]:
    async with ClientSession() as http, http.ws_connect(ogmios_server.make_url("/")) as ws:
        yield OgmiosClient(ws)

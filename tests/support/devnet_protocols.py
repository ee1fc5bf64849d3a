"""Fixtures for the devnet's Ogmios/Kupo protocol tests (registered in tests/conftest.py).

``devnet_chain`` is a real devnet ``Chain`` built in-process; ``ogmios_test_server`` / ``kupo_test_server``
run the real aiohttp applications over it on loopback (aiohttp's TestServer); ``ogmios_client`` is a
JSON-RPC client on one WebSocket. ``new_chain`` and ``signed_tx`` build chains and signed transactions.
The devnet package is imported lazily, so registering this plugin costs other services' tests nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestServer

if TYPE_CHECKING:
    from devnet.chain import Chain

__all__ = [
    "OgmiosClient",
    "devnet_chain",
    "kupo_test_server",
    "new_chain",
    "ogmios_client",
    "ogmios_test_server",
    "signed_tx",
]

SYSTEM_START = datetime(2024, 1, 1, tzinfo=UTC)


def new_chain(typical_blocks: int = 3, seed: str = "protocol-tests") -> Chain:
    """A fresh devnet chain: the genesis distribution block, then ``typical_blocks`` blocks of typical txs."""
    from devnet.chain import Chain
    from devnet.genesis import Genesis

    chain = Chain.create(Genesis(seed=seed, system_start=SYSTEM_START))
    if typical_blocks:
        chain.produce_blocks(typical_blocks, fill="typical")
    return chain


@pytest.fixture
def devnet_chain() -> Chain:
    return new_chain()


@pytest.fixture
async def ogmios_test_server(devnet_chain: Chain) -> AsyncIterator[TestServer]:
    from devnet.ogmios.server import build_app as build_ogmios_app

    server = TestServer(build_ogmios_app(devnet_chain))
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
async def ogmios_client(ogmios_test_server: TestServer) -> AsyncIterator[OgmiosClient]:
    async with ClientSession() as http, http.ws_connect(ogmios_test_server.make_url("/")) as ws:
        yield OgmiosClient(ws)


@pytest.fixture
async def kupo_test_server(devnet_chain: Chain) -> AsyncIterator[TestServer]:
    from devnet.kupo.server import build_app as build_kupo_app

    server = TestServer(build_kupo_app(devnet_chain))
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


# -- signed transactions built directly (cbor2 + the genesis keys' Ed25519), no pycardano ----------------


def signed_tx(
    chain: Chain,
    key_index: int = 0,
    outputs: list[dict[int, Any]] | None = None,
    *,
    inputs: list[tuple[str, int]] | None = None,
    utxo: tuple[str, int, int] | None = None,
    extra_body: dict[int, Any] | None = None,
    witness_extra: dict[int, Any] | None = None,
    metadata: dict[int, Any] | None = None,
    sign: bool = True,
    fee: int | None = None,
) -> bytes:
    """A Conway tx from genesis key ``key_index``: its largest UTxO in, ``outputs`` + change out.

    ``outputs`` are map-form outputs ``{0: address bytes, 1: value, 2?: datum option, 3?: #6.24(script)}``.
    ``utxo=(tx_id, index, lovelace)`` spends that output (with change); ``inputs`` spends refs without change.
    The fee is the linear minimum plus a margin (overpaying is allowed), so the tx is balanced.
    """
    import hashlib

    import cbor2

    key = chain.genesis.keys[key_index]
    if utxo is not None:
        in_refs, in_lovelace = [(utxo[0], utxo[1])], utxo[2]
    elif inputs is None:
        ref, out = max(chain.utxos_at(key.address_bytes), key=lambda pair: pair[1].lovelace)
        in_refs, in_lovelace = [(ref.tx_id, ref.index)], out.lovelace
    else:
        in_refs, in_lovelace = inputs, 0
    outputs = list(outputs or [{0: key.address_bytes, 1: 2_000_000}])
    aux = cbor2.dumps(metadata) if metadata is not None else None

    def assemble(fee_lovelace: int) -> bytes:
        paid = sum(o[1] if isinstance(o[1], int) else o[1][0] for o in outputs)
        change = in_lovelace - paid - fee_lovelace
        outs = outputs + ([{0: key.address_bytes, 1: change}] if inputs is None else [])
        body: dict[int, Any] = {
            0: [[bytes.fromhex(tx_id), index] for tx_id, index in in_refs],
            1: outs,
            2: fee_lovelace,
        }
        if aux is not None:
            body[7] = hashlib.blake2b(aux, digest_size=32).digest()
        body.update(extra_body or {})
        body_bytes = cbor2.dumps(body)
        digest = hashlib.blake2b(body_bytes, digest_size=32).digest()
        witness: dict[int, Any] = {0: [[key.vkey, key.sign(digest) if sign else bytes(64)]]}
        witness.update(witness_extra or {})
        return b"\x84" + body_bytes + cbor2.dumps(witness) + b"\xf5" + (aux or b"\xf6")

    if fee is not None:
        return assemble(fee)
    draft = assemble(0xFFFFFFFF)
    return assemble(chain.params.min_fee(len(draft)) + 1_000)

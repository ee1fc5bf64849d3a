"""A real devnet and indexer (processes on loopback) shared by the web3 integration tests of a module.

``chain_stack`` starts ``python -m devnet --block-time 0`` (blocks only when a test asks) and
``python -m indexer`` recording payments to the treasury (the pay-to address) and to one more
watched address. ``web3_gateway`` builds the in-process gateway over it with a fake image generator
that follows the generations runner's contract (authorize → generate → wait_until_releasable →
capture) and records when each step happened.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from pycardano import (
    Address,
    Asset,
    AssetName,
    AuxiliaryData,
    Metadata,
    MultiAsset,
    OgmiosV6ChainContext,
    ScriptHash,
    TransactionBuilder,
    TransactionOutput,
    Value,
)

from common.cardano import AssetId
from gateway.server.core import GatewayApp
from gateway.web3.payment import PaidGenerator, PaymentLike
from gateway.web3.txbuild import payment_ref
from tests.gateway.conftest import MakeGateway
from tests.gateway.web3.wallet import TestWallet
from tests.support.devnet_fixture import DevnetProcess
from tests.support.indexer_fixture import IndexerProcess

ASSET = AssetId("c0ffee" + "00" * 25, b"CREATE".hex())
FAKE_ASSET = AssetId("bad0" + "11" * 26, b"CREATE".hex())
MIN_CONFIRMATIONS = 3


@dataclass
class ChainStack:
    devnet: DevnetProcess
    indexer: IndexerProcess
    treasury: TestWallet
    elsewhere: TestWallet

    def fund(self, wallet: TestWallet, lovelace: int = 20_000_000, create: int = 5, fake: int = 0) -> None:
        assets = {str(ASSET): create} if create else {}
        if fake:
            assets[str(FAKE_ASSET)] = fake
        self.devnet.fund(wallet.bech32, lovelace, assets or None)
        self.devnet.blocks(1)

    def submit_directly(self, tx_cbor: bytes) -> dict[str, Any]:
        """What a wallet does when it submits itself: Ogmios submitTransaction on the node."""
        body = json.dumps({"jsonrpc": "2.0", "method": "submitTransaction",
                           "params": {"transaction": {"cbor": tx_cbor.hex()}}, "id": 1}).encode()
        request = urllib.request.Request(self.devnet.ogmios_http_url, data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]


def hand_built_payment(stack: ChainStack, wallet: TestWallet, *, quote_id: str | None, asset: AssetId = ASSET,
                       to: str | None = None, quantity: int = 1) -> tuple[str, bytes]:
    """A tx the artist builds with pycardano's own builder (not ours): returns (tx id, signed CBOR)."""
    context = OgmiosV6ChainContext(host="127.0.0.1", port=stack.devnet.ogmios_port, secure=False)
    builder = TransactionBuilder(context)
    builder.add_input_address(wallet.address)
    multi = MultiAsset({ScriptHash(bytes.fromhex(asset.policy_id)): Asset({AssetName(asset.name_bytes): quantity})})
    builder.add_output(TransactionOutput(Address.from_primitive(to or stack.treasury.bech32), Value(2_000_000, multi)))
    if quote_id is not None:
        builder.auxiliary_data = AuxiliaryData(Metadata({1968: {"quote": payment_ref(quote_id)}}))
    builder.ttl = int(stack.devnet.info()["tip"]["slot"]) + 300
    tx = builder.build_and_sign([wallet.payment], change_address=wallet.address)
    return str(tx.id), tx.to_cbor()


@pytest.fixture(scope="module")
def chain_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainStack]:
    tmp = tmp_path_factory.mktemp("web3-chain")
    treasury, elsewhere = TestWallet(), TestWallet()
    devnet = DevnetProcess(block_time=0).start()
    indexer = IndexerProcess(ogmios_url=devnet.ogmios_url, kupo_url=devnet.kupo_url, db_path=tmp / "indexer.sqlite3",
                             env={"INDEXER_TREASURY_ADDRESS": treasury.bech32,
                                  "INDEXER_WATCHED_ADDRESSES": elsewhere.bech32,
                                  "INDEXER_POLICY_ID": ASSET.policy_id, "INDEXER_ASSET_NAME": ASSET.asset_name})
    try:
        indexer.start()
        devnet.blocks(1)
        indexer.wait_health({200}, timeout_s=60)
        yield ChainStack(devnet, indexer, treasury, elsewhere)
    finally:
        indexer.close()
        devnet.close()


@dataclass
class FakeGenerator:
    """Images after ``inference_s``; records when authorize returned and when images were released."""

    inference_s: float = 0.05
    started: dict[str, float] = field(default_factory=dict)
    released: dict[str, float] = field(default_factory=dict)

    async def run(self, *, owner: str, prompt: str, params: dict[str, Any], payment: PaymentLike) -> list[str]:
        quote_id = payment.quote.id  # type: ignore[attr-defined]
        await payment.authorize()
        self.started[quote_id] = time.monotonic()
        try:
            await asyncio.sleep(self.inference_s)
            await payment.wait_until_releasable()
        except BaseException as exc:
            await payment.release(type(exc).__name__)
            raise
        await payment.capture([0])
        self.released[quote_id] = time.monotonic()
        return [f"/v1/images/{quote_id}-0.png"]


def web3_settings(stack: ChainStack, **overrides: Any) -> dict[str, Any]:
    return {"web3_pay_to_address": stack.treasury.bech32, "asset_policy_id": ASSET.policy_id,
            "asset_name_hex": ASSET.asset_name, "indexer_target": stack.indexer.grpc_target,
            "web3_min_confirmations": MIN_CONFIRMATIONS, "web3_confirm_wait_s": 30.0,
            "public_url": "http://studio.test", **overrides}


@dataclass
class Web3Gateway:
    app: GatewayApp
    client: AsyncTestClient[Any]
    generator: FakeGenerator
    stack: ChainStack

    async def quote(self, wallet: TestWallet, prompt: str = "a lighthouse at dusk", *,
                    headers: dict[str, str] | None = None, utxos: Sequence[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": prompt, "address": wallet.bech32, "params": {"steps": 1}}
        if utxos is not None:
            body["utxos"] = list(utxos)
        response = await self.client.post("/v1/web3/quotes", json=body, headers=headers or {})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def state(self, quote_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.get(f"/v1/web3/quotes/{quote_id}", headers=headers or {})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def wait_state(self, quote_id: str, states: set[str], timeout_s: float = 30.0,
                         headers: dict[str, str] | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            view = await self.state(quote_id, headers)
            if view["state"] in states:
                return view
            assert time.monotonic() < deadline, f"quote {quote_id} stayed {view} (wanted {states})"
            await asyncio.sleep(0.05)

    async def wait_started(self, quote_id: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while quote_id not in self.generator.started:
            assert time.monotonic() < deadline, f"generation of {quote_id} never started"
            await asyncio.sleep(0.05)

    async def blocks(self, count: int = 1) -> None:
        await asyncio.to_thread(self.stack.devnet.blocks, count)


@pytest.fixture
async def web3_gateway(chain_stack: ChainStack, make_gateway: MakeGateway,
                       tmp_path: Path) -> AsyncIterator[Web3Gateway]:
    generator = FakeGenerator()
    app = await make_gateway(provide={PaidGenerator: generator}, **web3_settings(chain_stack))
    async with AsyncTestClient(app=app.app) as client:
        yield Web3Gateway(app, client, generator, chain_stack)

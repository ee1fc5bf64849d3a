"""The wallet path through the generations domain's real job runner (inference is an in-memory fake):
images are stored but withheld until the payment is deep enough, then served from signed URLs."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import Any

from litestar.testing import AsyncTestClient

from gateway.generations.inference import Done, ImageOut, InferenceClient, InferenceRequest
from gateway.server.container import HealthResult
from tests.gateway.conftest import MakeGateway
from tests.gateway.web3.conftest import MIN_CONFIRMATIONS, ChainStack, Web3Gateway, web3_settings
from tests.gateway.web3.wallet import TestWallet


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(
        b"IEND", b"")


class OneImageInference:
    def __init__(self) -> None:
        self.requests: list[InferenceRequest] = []

    async def generate(self, request: InferenceRequest) -> AsyncIterator[Any]:
        self.requests.append(request)
        await asyncio.sleep(0.01)
        yield ImageOut(index=0, png=_png(), width=1, height=1, seed=7, model="fake")
        yield Done(images=1, flagged=0)

    async def health(self) -> HealthResult:
        return HealthResult(True, "ok")

    async def close(self) -> None:
        return None


async def test_images_released_by_the_job_runner_only_at_depth(chain_stack: ChainStack,
                                                               make_gateway: MakeGateway) -> None:
    inference = OneImageInference()
    app = await make_gateway(provide={InferenceClient: inference}, **web3_settings(chain_stack))
    async with AsyncTestClient(app=app.app) as client:
        gw = Web3Gateway(app, client, None, chain_stack)  # type: ignore[arg-type]
        wallet = TestWallet()
        chain_stack.fund(wallet)
        bad = await client.post("/v1/web3/quotes", json={"prompt": "p", "address": wallet.bech32,
                                                          "params": {"num_images": 3}})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_params", bad.text
        quote = await gw.quote(wallet, "a tide pool")
        response = await client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit",
                                     json={"witness_set": wallet.sign_tx(quote["tx_id"])})
        assert response.status_code == 202, response.text
        for _ in range(400):  # generated speculatively while the payment is in the mempool
            if inference.requests:
                break
            await asyncio.sleep(0.02)
        assert inference.requests and inference.requests[0].prompt == "a tide pool"
        await gw.blocks(MIN_CONFIRMATIONS - 1)
        waiting = await gw.state(quote["quote_id"])
        assert waiting["image_urls"] is None
        assert waiting["events_url"] == f"http://studio.test/v1/generations/{waiting['generation_id']}/events"
        await gw.blocks(1)
        view = await gw.wait_state(quote["quote_id"], {"delivered", "failed"})
        assert view["state"] == "delivered", view
        (url,) = view["image_urls"]
        image = await client.get(url.removeprefix("http://studio.test"))
        assert image.status_code == 200 and image.content == _png()

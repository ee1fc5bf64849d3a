"""Fixtures for generation tests: the app with the fake inference client, and funded artists."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.credits.ledger import Ledger
from gateway.generations.inference import InferenceClient
from gateway.server.core import GatewayApp
from tests.gateway.conftest import MakeGateway, open_client, signup, user_id_of
from tests.gateway.generations.fakes import FakeInference


@dataclass
class Artist:
    user_id: str
    headers: dict[str, str]
    tokens: dict[str, Any]


@dataclass
class Studio:
    gateway: GatewayApp
    client: httpx.AsyncClient
    inference: FakeInference

    @property
    def ledger(self) -> Ledger:
        return self.gateway.container.get(Ledger)  # type: ignore[type-abstract]

    async def artist(self, credits: int = 0, email: str | None = None) -> Artist:
        pair = await signup(self.client, email=email or f"artist-{uuid.uuid4().hex[:8]}@example.com")
        user_id = user_id_of(self.gateway, pair["access_token"])
        if credits:
            await self.ledger.credit_purchase(user_id=user_id, credits=credits, key=f"test:{uuid.uuid4().hex}")
        return Artist(user_id, pair["headers"], pair)

    async def post(self, artist: Artist, prompt: str = "a red fox", key: str | None = None,
                   **params: Any) -> Any:
        headers = {**artist.headers, "Idempotency-Key": key or uuid.uuid4().hex}
        return await self.client.post("/v1/generations", json={"prompt": prompt, "params": params}, headers=headers)

    async def wait_done(self, artist: Artist, generation_id: str, timeout_s: float = 20) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                body: dict[str, Any] = (await self.client.get(f"/v1/generations/{generation_id}",
                                                              headers=artist.headers)).json()
                if body["status"] in ("succeeded", "failed"):
                    return body
                await asyncio.sleep(0.01)


async def open_studio(make_gateway: MakeGateway, inference: FakeInference | None = None,
                      **settings: Any) -> AsyncIterator[Studio]:
    fake = inference or FakeInference()
    gateway = await make_gateway(provide={InferenceClient: fake}, **settings)
    async with open_client(gateway) as client:
        yield Studio(gateway, client, fake)


@pytest.fixture
async def studio(make_gateway: MakeGateway) -> AsyncIterator[Studio]:
    async for value in open_studio(make_gateway):
        yield value

"""A waiting client that goes away (POST /api/generate-art): GATEWAY_ON_CLIENT_DISCONNECT decides."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from tests.gateway.conftest import MakeGateway
from tests.gateway.generations.conftest import Studio, open_studio
from tests.gateway.generations.fakes import FakeInference


async def generate_art_then_leave(studio: Studio, headers: dict[str, str], leave: asyncio.Event) -> list[Any]:
    """Drive the ASGI app directly: the body arrives, then the connection drops when ``leave`` is set."""
    body = json.dumps({"prompt": "left early"}).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/generate-art", "raw_path": b"/api/generate-art", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver.local"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"authorization", headers["Authorization"].encode())],
        "client": ("127.0.0.1", 50001), "server": ("testserver.local", 80),
    }
    sent: list[Any] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await studio.gateway.app(scope, receive, send)  # type: ignore[arg-type]
    return sent


@pytest.mark.parametrize("policy", ["cancel", "continue"])
async def test_client_gone(make_gateway: MakeGateway, policy: str) -> None:
    fake = FakeInference()
    fake.gate = threading.Event()
    async for studio in open_studio(make_gateway, fake, on_client_disconnect=policy):
        artist = await studio.artist(credits=1)
        leave = asyncio.Event()
        call = asyncio.ensure_future(generate_art_then_leave(studio, artist.headers, leave))
        assert await asyncio.to_thread(fake.entered.wait, 10)
        leave.set()
        await asyncio.wait_for(call, 10)
        generation_id = (await studio.client.get("/v1/generations", headers=artist.headers)).json()["items"][0]["id"]
        fake.gate.set()
        done = await studio.wait_done(artist, generation_id)
        balance = await studio.ledger.balance(artist.user_id)
        if policy == "cancel":
            assert done["status"] == "failed" and done["error_code"] == "cancelled"
            assert (balance.available, balance.spent) == (1, 0)
        else:
            assert done["status"] == "succeeded"
            assert (balance.available, balance.spent) == (0, 1)
        assert balance.pending == 0

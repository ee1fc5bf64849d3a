"""Progress over SSE, the seed's /api/generate-art (card path and the web3 hook), crash recovery."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

import httpx

from gateway.accounts.principal import Principal
from gateway.credits.ledger import INSUFFICIENT_CREDITS_MESSAGE, Ledger
from gateway.generations.events import EventHub
from gateway.generations.inference import InferenceClient
from gateway.generations.payment import WalletGenerateArt
from gateway.generations.runner import JobRunner
from gateway.generations.services import GenerationService
from tests.gateway.conftest import MakeGateway, open_client
from tests.gateway.generations.conftest import Artist, Studio, open_studio
from tests.gateway.generations.fakes import FakeInference


async def read_events(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    kind = ""
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.split(":", 1)[1])))
                if kind in ("done", "error"):
                    break
    return events


async def test_sse_streams_progress_then_done(make_gateway: MakeGateway) -> None:
    fake = FakeInference(steps=3)
    fake.gate = threading.Event()
    async for studio in open_studio(make_gateway, fake):
        artist = await studio.artist(credits=1)
        created = (await studio.post(artist)).json()
        url = created["events_url"].split("8080", 1)[1]
        reader = asyncio.ensure_future(read_events(studio.client, url, artist.headers))
        hub = studio.gateway.container.get(EventHub)
        async with asyncio.timeout(10):  # the subscriber is in before the gate opens
            while hub.subscribers(created["id"]) == 0:
                await asyncio.sleep(0.005)
        fake.gate.set()
        events = await asyncio.wait_for(reader, 20)
        kinds = [k for k, _ in events]
        assert kinds[0] == "state" and kinds[-1] == "done"
        assert kinds.count("step") == 3 and "image" in kinds
        assert events[-1][1]["status"] == "succeeded" and events[-1][1]["images"][0]["url"]
        # A late subscriber gets the current state first, then the final event at once.
        late = await asyncio.wait_for(read_events(studio.client, url, artist.headers), 20)
        assert [k for k, _ in late] == ["state", "done"]
        other = await studio.artist()
        assert (await studio.client.get(url, headers=other.headers)).status_code == 404


async def test_sse_reports_errors(studio: Studio) -> None:
    artist = await studio.artist(credits=1)
    studio.inference.behaviour = "fail"
    created = (await studio.post(artist)).json()
    events = await asyncio.wait_for(read_events(studio.client, f"/v1/generations/{created['id']}/events",
                                                artist.headers), 20)
    assert events[-1][0] == "error" and events[-1][1]["error_code"] == "inference_unavailable"


async def test_generate_art_with_jwt(studio: Studio) -> None:
    artist = await studio.artist(credits=1)
    ok = await studio.client.post("/api/generate-art", json={"prompt": "a castle"}, headers=artist.headers)
    assert ok.status_code == 200, ok.text
    urls = ok.json()["imageUrls"]
    assert len(urls) == 1 and "/v1/images/" in urls[0] and "sig=" in urls[0]
    broke = await studio.client.post("/api/generate-art", json={"prompt": "a castle"}, headers=artist.headers)
    assert broke.status_code == 402
    assert broke.json()["error"] == INSUFFICIENT_CREDITS_MESSAGE == "Insufficient credits. Please purchase more."
    anonymous = await studio.client.post("/api/generate-art", json={"prompt": "a castle"})
    assert anonymous.status_code == 401
    no_web3 = await studio.client.post("/api/generate-art", json={"prompt": "a castle", "address": "addr_test1x"})
    assert no_web3.status_code == 503 and no_web3.json()["code"] == "web3_disabled"


async def test_generate_art_failures_are_problems(studio: Studio) -> None:
    artist = await studio.artist(credits=2)
    studio.inference.by_prompt.update({"flagged": "flag", "fails": "fail"})
    flagged = await studio.client.post("/api/generate-art", json={"prompt": "flagged"}, headers=artist.headers)
    assert flagged.status_code == 422 and flagged.json()["code"] == "safety_filtered"
    failed = await studio.client.post("/api/generate-art", json={"prompt": "fails"}, headers=artist.headers)
    assert failed.status_code == 502 and "not charged" in failed.json()["error"]
    assert (await studio.ledger.balance(artist.user_id)).available == 2


class RecordingWallet:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], Principal | None]] = []

    async def generate_art(self, body: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
        self.calls.append((body, principal))
        return {"transactionBlueprint": {"quote_id": "q1"}}


async def test_generate_art_dispatches_wallet_requests(make_gateway: MakeGateway) -> None:
    wallet = RecordingWallet()
    gateway = await make_gateway(provide={InferenceClient: FakeInference(), WalletGenerateArt: wallet})
    async with open_client(gateway) as client:
        response = await client.post("/api/generate-art",
                                     json={"prompt": "a castle", "address": "addr_test1x", "extra": [1]})
        assert response.status_code == 200 and response.json() == {"transactionBlueprint": {"quote_id": "q1"}}
    assert wallet.calls == [({"prompt": "a castle", "address": "addr_test1x", "extra": [1]}, None)]


class SimulatedCrash(BaseException):
    """Not an Exception: the runner does not handle it, like a process that died."""


class CrashAfterPost:
    """Wraps the ledger: the post commits, then the 'process dies' (the runner sees an exception
    before it records success) — what a kill -9 right after the post leaves behind."""

    def __init__(self, inner: Ledger) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def post(self, generation_id: str) -> Any:
        await self.inner.post(generation_id)
        raise SimulatedCrash("simulated crash after the post")


async def test_recovery_finishes_what_a_crash_left(make_gateway: MakeGateway, tmp_path: Any) -> None:
    state = tmp_path / "crashed"
    gated = FakeInference()
    gated.gate = threading.Event()
    first = await make_gateway(state_dir=state, provide={InferenceClient: gated})
    ledger = first.container.get(Ledger)  # type: ignore[type-abstract]
    service = first.container.get(GenerationService)
    async with open_client(first) as client:
        studio = Studio(first, client, FakeInference())
        artist: Artist = await studio.artist(credits=3)
        # Left running by a crash right after the post: the images were recorded, the hold is posted.
        service.credit_payment = _crashing(service, CrashAfterPost(ledger))  # type: ignore[method-assign]
        posted = (await studio.post(artist, "posted")).json()["id"]
        task = first.container.get(JobRunner).jobs[posted].task
        assert task is not None
        gated.gate.set()
        with contextlib.suppress(SimulatedCrash):
            await task
        # A crash right after the hold: a generation row 'running' with a pending hold and no images.
        user = artist.user_id
        await ledger.hold(user_id=user, generation_id="held-before-crash", timeout_s=300)
        await first.container.db.write(lambda conn: conn.execute(
            "INSERT INTO generations (id, owner, user_id, idempotency_key, request_hash, prompt, params, status,"
            " payment_kind, created_us, updated_us) VALUES ('held-before-crash', ?, ?, 'k', 'h', 'p', '{}',"
            " 'running', 'credits', 1, 1)", (f"user:{user}", user)))
    second = await make_gateway(state_dir=state, provide={InferenceClient: FakeInference()})
    rows = await second.container.db.read(lambda conn: dict(conn.execute(
        "SELECT id, status FROM generations").fetchall()))
    assert rows[posted] == "succeeded" and rows["held-before-crash"] == "failed"
    ledger2 = second.container.get(Ledger)  # type: ignore[type-abstract]
    assert (await ledger2.get_hold(posted)).state == "posted"  # type: ignore[union-attr]
    assert (await ledger2.get_hold("held-before-crash")).state == "voided"  # type: ignore[union-attr]
    balance = await ledger2.balance(user)
    assert (balance.available, balance.pending, balance.spent) == (2, 0, 1)
    assert (await ledger2.reconcile()).ok


def _crashing(service: GenerationService, ledger: Any) -> Any:
    original = service.credit_payment

    def build(principal: Principal, generation_id: str, images: int) -> Any:
        payment = original(principal, generation_id, images)
        payment.ledger = ledger
        return payment

    return build

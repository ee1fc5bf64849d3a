"""Card-paid generations in process: lifecycle, ownership, idempotency, charging only what is delivered."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

from gateway.credits.ledger import INSUFFICIENT_CREDITS_MESSAGE
from gateway.credits.postgres_store import PostgresLedger
from gateway.credits.sqlite_store import SqliteLedger
from gateway.generations.images import ImageUrlSigner
from gateway.generations.runner import JobRunner
from gateway.lib.db import Database
from tests.gateway.conftest import MakeGateway, open_client
from tests.gateway.generations.conftest import Studio, open_studio
from tests.gateway.generations.fakes import FakeInference


async def balance(studio: Studio, user_id: str) -> tuple[int, int]:
    b = await studio.ledger.balance(user_id)
    return b.available, b.pending


async def test_generation_lifecycle_and_ownership(studio: Studio) -> None:
    artist = await studio.artist(credits=3)
    created = await studio.post(artist, "a red fox in the snow", width=64, height=64, seed=11)
    assert created.status_code == 202, created.text
    body = created.json()
    assert set(body) >= {"id", "status", "events_url"} and body["events_url"].endswith(f"/{body['id']}/events")
    done = await studio.wait_done(artist, body["id"])
    assert done["status"] == "succeeded" and done["error"] is None and done["payment"] == "credits"
    assert len(done["images"]) == 1 and done["params"]["seed"] == 11
    assert await balance(studio, artist.user_id) == (2, 0)
    intents = await studio.ledger.outbox()
    assert [i.generation_id for i in intents] == [body["id"]]
    # The owner downloads with the bearer token; the signed URL works without one.
    sha = done["images"][0]["sha256"]
    own = await studio.client.get(f"/v1/images/{sha}", headers=artist.headers)
    assert own.status_code == 200 and own.content.startswith(b"\x89PNG") and own.headers["content-type"] == "image/png"
    signed = done["images"][0]["url"].split("testserver.local", 1)[-1].replace("http://127.0.0.1:8080", "")
    assert (await studio.client.get(signed)).status_code == 200
    # Another artist: 404 for the generation, the image, and the listing is empty.
    other = await studio.artist()
    assert (await studio.client.get(f"/v1/generations/{body['id']}", headers=other.headers)).status_code == 404
    assert (await studio.client.get(f"/v1/images/{sha}", headers=other.headers)).status_code == 404
    assert (await studio.client.get("/v1/images/" + sha)).status_code == 404
    assert (await studio.client.get("/v1/generations", headers=other.headers)).json()["items"] == []


async def test_signed_urls_expire_and_cannot_be_forged(studio: Studio) -> None:
    artist = await studio.artist(credits=1)
    done = await studio.wait_done(artist, (await studio.post(artist)).json()["id"])
    sha = done["images"][0]["sha256"]
    signer = studio.gateway.container.get(ImageUrlSigner)
    good_exp = int(time.time()) + 60
    good = signer.url(sha).split("?", 1)[1]
    assert (await studio.client.get(f"/v1/images/{sha}?{good}")).status_code == 200
    forged_sig = "0" * 64
    assert (await studio.client.get(f"/v1/images/{sha}?exp={good_exp}&sig={forged_sig}")).status_code == 404
    signer.clock = lambda: time.time() - 2 * signer.ttl_s
    stale = signer.url(sha).split("?", 1)[1]
    signer.clock = time.time
    assert (await studio.client.get(f"/v1/images/{sha}?{stale}")).status_code == 404
    assert (await studio.client.get("/v1/images/not-a-sha")).status_code == 404


async def test_idempotency_key(studio: Studio) -> None:
    artist = await studio.artist(credits=5)
    key = uuid.uuid4().hex
    first = await studio.post(artist, "same", key=key)
    second = await studio.post(artist, "same", key=key)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    await studio.wait_done(artist, first.json()["id"])
    assert await balance(studio, artist.user_id) == (4, 0)
    other_body = await studio.post(artist, "different prompt", key=key)
    assert other_body.status_code == 422 and other_body.json()["code"] == "idempotency_key_reused"
    missing = await studio.client.post("/v1/generations", json={"prompt": "x"}, headers=artist.headers)
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_required"
    # The same key from another artist is another generation.
    other = await studio.artist(credits=1)
    theirs = await studio.post(other, "same", key=key)
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]


async def test_no_credits_is_402_and_forgotten(studio: Studio) -> None:
    artist = await studio.artist()
    key = uuid.uuid4().hex
    refused = await studio.post(artist, key=key)
    assert refused.status_code == 402
    assert refused.json()["error"] == INSUFFICIENT_CREDITS_MESSAGE
    assert (await studio.client.get("/v1/generations", headers=artist.headers)).json()["items"] == []
    await studio.ledger.credit_purchase(user_id=artist.user_id, credits=1, key="test:later")
    retried = await studio.post(artist, key=key)
    assert retried.status_code == 202
    assert (await studio.wait_done(artist, retried.json()["id"]))["status"] == "succeeded"


async def test_fifty_concurrent_on_ten_credits(studio: Studio) -> None:
    artist = await studio.artist(credits=10)
    responses = await asyncio.gather(*(studio.post(artist, f"prompt {i}") for i in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(202) == 10 and statuses.count(402) == 40, statuses
    finals = [await studio.wait_done(artist, r.json()["id"]) for r in responses if r.status_code == 202]
    assert [f["status"] for f in finals] == ["succeeded"] * 10
    b = await studio.ledger.balance(artist.user_id)
    assert (b.available, b.pending, b.spent) == (0, 0, 10)
    assert len(await studio.ledger.outbox()) == 10
    assert (await studio.ledger.reconcile()).ok


async def test_failures_are_not_charged(studio: Studio) -> None:
    artist = await studio.artist(credits=3)
    studio.inference.by_prompt.update({"fails": "fail", "flagged": "flag"})
    failed = await studio.wait_done(artist, (await studio.post(artist, "fails")).json()["id"])
    assert failed["status"] == "failed" and failed["error_code"] == "inference_unavailable" and not failed["images"]
    flagged = await studio.wait_done(artist, (await studio.post(artist, "flagged")).json()["id"])
    assert flagged["status"] == "failed" and flagged["error_code"] == "safety_filtered"
    assert "not charged" in flagged["error"]
    assert await balance(studio, artist.user_id) == (3, 0)
    assert await studio.ledger.outbox() == []


async def test_partly_flagged_charges_only_delivered(studio: Studio) -> None:
    artist = await studio.artist(credits=3)
    studio.inference.by_prompt["two"] = "flag_first"
    created = await studio.post(artist, "two", num_images=2)
    done = await studio.wait_done(artist, created.json()["id"])
    assert done["status"] == "succeeded" and [i["index"] for i in done["images"]] == [1]
    assert await balance(studio, artist.user_id) == (2, 0)
    assert [i.generation_id for i in await studio.ledger.outbox()] == [f"{created.json()['id']}.1"]


async def test_inference_queue_full_is_503_and_not_charged(studio: Studio) -> None:
    artist = await studio.artist(credits=2)
    studio.inference.behaviour = "busy"
    key = uuid.uuid4().hex
    busy = await studio.post(artist, key=key)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
    assert busy.json()["code"] == "inference_busy"
    assert await balance(studio, artist.user_id) == (2, 0)
    studio.inference.behaviour = "ok"
    again = await studio.post(artist, key=key)  # the same key works once there is room
    assert again.status_code == 202


async def test_gateway_concurrency_limit_is_503(make_gateway: MakeGateway) -> None:
    fake = FakeInference()
    fake.gate = threading.Event()
    async for studio in open_studio(make_gateway, fake, max_concurrent_generations=1):
        artist = await studio.artist(credits=5)
        first = await studio.post(artist)
        assert first.status_code == 202
        second = await studio.post(artist)
        assert second.status_code == 503 and second.headers["retry-after"]
        assert second.json()["code"] == "generations_busy"
        assert await balance(studio, artist.user_id) == (4, 1)
        fake.gate.set()
        await studio.wait_done(artist, first.json()["id"])
        assert await balance(studio, artist.user_id) == (4, 0)


async def test_hold_timeout_is_not_charged(make_gateway: MakeGateway) -> None:
    fake = FakeInference()
    fake.gate = threading.Event()
    async for studio in open_studio(make_gateway, fake, hold_timeout_s=1, generation_timeout_s=1.0):
        artist = await studio.artist(credits=1)
        created = (await studio.post(artist)).json()
        hold = await studio.ledger.get_hold(created["id"])
        assert hold is not None and hold.state == "pending"
        await asyncio.sleep(max(0.0, hold.expires_at - time.time()) + 0.05)  # expires while inference runs
        fake.gate.set()
        done = await studio.wait_done(artist, created["id"])
        assert done["status"] == "failed" and done["error_code"] == "hold_expired"
        assert await balance(studio, artist.user_id) == (1, 0)
        hold = await studio.ledger.get_hold(created["id"])
        assert hold is not None and hold.state == "voided"
        assert await studio.ledger.outbox() == []


async def test_cancel_releases_the_hold(make_gateway: MakeGateway) -> None:
    fake = FakeInference()
    fake.gate = threading.Event()
    async for studio in open_studio(make_gateway, fake):
        artist = await studio.artist(credits=1)
        created = (await studio.post(artist)).json()
        assert await asyncio.to_thread(fake.entered.wait, 10)
        runner = studio.gateway.container.get(JobRunner)
        assert runner.cancel(created["id"])
        done = await studio.wait_done(artist, created["id"])
        assert done["status"] == "failed" and done["error_code"] == "cancelled"
        assert fake.cancelled == 1
        assert await balance(studio, artist.user_id) == (1, 0)


async def test_listing_is_newest_first_with_cursor(studio: Studio) -> None:
    artist = await studio.artist(credits=5)
    ids = []
    for i in range(5):
        ids.append((await studio.post(artist, f"p{i}")).json()["id"])
    seen: list[str] = []
    cursor = ""
    while True:
        page = (await studio.client.get("/v1/generations", params={"cursor": cursor, "limit": 2},
                                        headers=artist.headers)).json()
        seen.extend(item["id"] for item in page["items"])
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
    assert seen == ids[::-1]
    bad = await studio.client.get("/v1/generations", params={"cursor": "!!!"}, headers=artist.headers)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_cursor"
    assert (await studio.client.get("/v1/generations", params={"limit": 0}, headers=artist.headers)).status_code == 400


async def test_frozen_account_and_wallet_sessions_are_refused(studio: Studio) -> None:
    artist = await studio.artist(credits=2)
    await studio.ledger.set_frozen(artist.user_id, True, reason="dispute", key="test:freeze")
    frozen = await studio.post(artist)
    assert frozen.status_code == 403 and frozen.json()["code"] == "account_frozen"
    from gateway.accounts.principal import Principal
    from gateway.accounts.tokens import TokenService

    wallet = await studio.gateway.container.get(TokenService).issue(Principal(kind="wallet", subject="addr_test1w"))
    refused = await studio.post(type(artist)("", {"Authorization": f"Bearer {wallet.access_token}"}, {}))
    assert refused.status_code == 403 and refused.json()["code"] == "no_card_account"
    assert await balance(studio, artist.user_id) == (2, 0)


async def test_shutdown_releases_in_flight_holds(make_gateway: MakeGateway) -> None:
    fake = FakeInference()
    fake.gate = threading.Event()
    gateway = None
    async for studio in open_studio(make_gateway, fake):
        gateway = studio.gateway
        artist = await studio.artist(credits=1)
        created = (await studio.post(artist)).json()
        assert await asyncio.to_thread(fake.entered.wait, 10)
    assert gateway is not None  # the studio's client closed: the app shut down with the job in flight
    settings = gateway.container.settings
    if settings.database_url:  # PostgreSQL: a fresh ledger on the same database
        pg_ledger = await PostgresLedger.open(settings.database_url, run_migrations=False, max_size=1)
        try:
            hold = await pg_ledger.get_hold(created["id"])
        finally:
            await pg_ledger.close()
    else:
        db = Database(settings.sqlite_path)
        try:
            hold = await SqliteLedger(db).get_hold(created["id"])
        finally:
            db.close()
    assert hold is not None and hold.state == "voided" and hold.reason == "cancelled"


async def test_unreachable_inference_fails_and_is_not_charged(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(inference_target="127.0.0.1:9")  # the real gRPC client; nothing listens
    async with open_client(gateway) as client:
        studio = Studio(gateway, client, FakeInference())
        artist = await studio.artist(credits=1)
        done = await studio.wait_done(artist, (await studio.post(artist)).json()["id"])
        assert done["status"] == "failed" and done["error_code"] == "inference_unavailable"
        assert await balance(studio, artist.user_id) == (1, 0)

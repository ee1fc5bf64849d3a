"""Real processes on loopback: ``python -m inference`` (built-in CPPN) and ``python -m gateway``.

Credits are put on the account through the ledger directly (billing is tested on its own); the
gateway process and the test share the SQLite file, as a second replica would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database
from tests.support.black_hole import black_hole_server
from tests.support.gateway_fixture import GatewayProcess
from tests.support.inference_fixture import InferenceProcess

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"


def signup(gw: GatewayProcess, email: str) -> tuple[str, dict[str, str]]:
    status, body = gw.json("POST", "/v1/auth/signup", json_body={"email": email, "password": PASSWORD})
    assert status == 201, body
    payload = body["access_token"].split(".")[1]
    user_id = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
    return user_id, {"Authorization": f"Bearer {body['access_token']}"}


def with_ledger(gw: GatewayProcess, fn: Callable[[SqliteLedger], Any]) -> Any:
    db = Database(gw.state_dir / "gateway.sqlite3")
    try:
        return asyncio.run(fn(SqliteLedger(db)))
    finally:
        db.close()


def credit(gw: GatewayProcess, user_id: str, credits: int) -> None:
    with_ledger(gw, lambda ledger: ledger.credit_purchase(user_id=user_id, credits=credits,
                                                          key=f"test:{uuid.uuid4().hex}"))


def generate(gw: GatewayProcess, headers: dict[str, str], prompt: str) -> tuple[int, Any]:
    return gw.json("POST", "/v1/generations", json_body={"prompt": prompt, "params": {"width": 64, "height": 64}},
                   headers={**headers, "Idempotency-Key": uuid.uuid4().hex})


def wait_done(gw: GatewayProcess, headers: dict[str, str], generation_id: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = gw.json("GET", f"/v1/generations/{generation_id}", headers=headers)
        assert status == 200, body
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"generation {generation_id} did not finish")


@pytest.fixture
def inference(inference_factory: Callable[..., InferenceProcess]) -> InferenceProcess:
    return inference_factory()


@pytest.fixture
def gateway_proc(gateway_factory: Callable[..., GatewayProcess], inference: InferenceProcess) -> GatewayProcess:
    return gateway_factory(env={"GATEWAY_INFERENCE_TARGET": inference.grpc_target})


def test_sign_up_credit_generate_download(gateway_proc: GatewayProcess) -> None:
    gw = gateway_proc
    status, health = gw.health()
    assert health["checks"]["inference"]["ok"] and health["checks"]["database"]["ok"], health
    user_id, headers = signup(gw, "painter@example.com")
    credit(gw, user_id, 10)
    status, created = generate(gw, headers, "a lighthouse at dusk")
    assert status == 202, created
    done = wait_done(gw, headers, created["id"])
    assert done["status"] == "succeeded", done
    image = done["images"][0]
    assert (image["width"], image["height"]) == (64, 64)
    status, response_headers, png = gw.request("GET", f"/v1/images/{image['sha256']}", headers=headers)
    assert status == 200 and png.startswith(b"\x89PNG") and response_headers["content-type"] == "image/png"
    signed_path = image["url"].removeprefix(gw.url)
    assert gw.request("GET", signed_path)[0] == 200
    _other_id, other = signup(gw, "someone-else@example.com")
    assert gw.request("GET", f"/v1/images/{image['sha256']}", headers=other)[0] == 404
    assert gw.request("GET", f"/v1/generations/{created['id']}", headers=other)[0] == 404
    intents = with_ledger(gw, lambda ledger: ledger.outbox())
    assert [i.generation_id for i in intents] == [created["id"]]
    status, account = gw.json("GET", "/v1/account", headers=headers)
    assert (account["credits_available"], account["credits_pending"]) == (9, 0)
    seed = gw.json("POST", "/api/generate-art", json_body={"prompt": "a fox"}, headers=headers)
    assert seed[0] == 200 and len(seed[1]["imageUrls"]) == 1


def test_fifty_concurrent_generations_on_ten_credits(gateway_proc: GatewayProcess) -> None:
    gw = gateway_proc
    user_id, headers = signup(gw, "busy@example.com")
    credit(gw, user_id, 10)
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda i: generate(gw, headers, f"study {i}"), range(50)))
    statuses = [status for status, _ in results]
    assert statuses.count(202) == 10 and statuses.count(402) == 40, statuses
    assert all(body["error"] == "Insufficient credits. Please purchase more." for s, body in results if s == 402)
    finals = [wait_done(gw, headers, body["id"]) for status, body in results if status == 202]
    assert [f["status"] for f in finals] == ["succeeded"] * 10
    balance = with_ledger(gw, lambda ledger: ledger.balance(user_id))
    assert (balance.available, balance.pending, balance.spent) == (0, 0, 10)
    check = gw.cli("reconcile")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A TCP port that accepts connections and never answers: a generation sent there stays in flight."""
    with black_hole_server() as target:
        yield target


def resolutions(gw: GatewayProcess, generation_id: str) -> list[str]:
    db = Database(gw.state_dir / "gateway.sqlite3")
    try:
        return db.read_sync(lambda conn: [r["kind"] for r in conn.execute(
            "SELECT e.kind FROM credit_entries e JOIN credit_holds h ON e.pending_id = h.entry_id"
            " WHERE h.generation_id = ?", (generation_id,))])
    finally:
        db.close()


def test_kill_9_after_a_hold_and_after_a_post(gateway_factory: Callable[..., GatewayProcess],
                                              inference: InferenceProcess, black_hole: str, tmp_path: Path) -> None:
    # 1. Right after a hold: inference never answers, so the generation is held and in flight.
    gw = gateway_factory(env={"GATEWAY_INFERENCE_TARGET": black_hole})
    user_id, headers = signup(gw, "crash@example.com")
    credit(gw, user_id, 2)
    status, held = generate(gw, headers, "never finishes")
    assert status == 202 and held["status"] == "queued", held
    hold = with_ledger(gw, lambda ledger: ledger.get_hold(held["id"]))
    assert hold is not None and hold.state == "pending"
    gw.kill()
    gw.env["GATEWAY_INFERENCE_TARGET"] = inference.grpc_target
    gw.start()
    after = wait_done(gw, headers, held["id"])
    assert after["status"] == "failed" and after["error_code"] == "interrupted"
    assert resolutions(gw, held["id"]) == ["void"]
    # 2. Right after a post: kill as soon as the generation is reported succeeded.
    status, paid = generate(gw, headers, "finishes")
    assert status == 202
    assert wait_done(gw, headers, paid["id"])["status"] == "succeeded"
    gw.kill()
    gw.start()
    assert wait_done(gw, headers, paid["id"])["status"] == "succeeded"
    assert resolutions(gw, paid["id"]) == ["post"]
    balance = with_ledger(gw, lambda ledger: ledger.balance(user_id))
    assert (balance.available, balance.pending, balance.spent) == (1, 0, 1)
    intents = with_ledger(gw, lambda ledger: ledger.outbox())
    assert [i.generation_id for i in intents] == [paid["id"]]
    check = gw.cli("reconcile")
    assert check.returncode == 0, check.stdout + check.stderr


def test_real_inference_queue_full_is_503_and_not_charged(gateway_factory: Callable[..., GatewayProcess],
                                                          inference_factory: Callable[..., InferenceProcess]) -> None:
    inference = inference_factory(env={"INFERENCE_QUEUE_MAX": "1", "INFERENCE_MAX_BATCH": "1"})
    gw = gateway_factory(env={"GATEWAY_INFERENCE_TARGET": inference.grpc_target})
    user_id, headers = signup(gw, "queue@example.com")
    credit(gw, user_id, 8)

    def big(i: int) -> tuple[int, dict[str, str], bytes]:
        return gw.request("POST", "/v1/generations", headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                          json_body={"prompt": f"large canvas {i}", "params": {"width": 1024, "height": 1024}})

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(big, range(8)))
    busy = [(h, json.loads(b)) for s, h, b in results if s == 503]
    accepted = [json.loads(b)["id"] for s, _h, b in results if s == 202]
    assert busy, [s for s, _h, _b in results]
    assert all(h["retry-after"] == "2" and body["code"] == "inference_busy" for h, body in busy)
    finals = [wait_done(gw, headers, gid, timeout_s=120)["status"] for gid in accepted]
    balance = with_ledger(gw, lambda ledger: ledger.balance(user_id))
    assert (balance.pending, balance.spent) == (0, finals.count("succeeded"))
    assert balance.available == 8 - finals.count("succeeded")

"""One gateway process over three real ``python -m inference`` servers (the built-in CPPN model, CPU).

- the server running a generation is killed mid-stream → the generation is retried on another server
  (or, had an image already come back, voided): nobody is charged for an image not delivered;
- a dead server gets no new work once its health says so; one target given as ``dns:///`` works;
- a server whose queue is full refuses; the gateway sends that generation to another (no 503).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gateway.credits.sqlite_store import SqliteLedger
from gateway.lib.db import Database
from tests.gateway.scale.test_replicas import signup, wait_until
from tests.support.gateway_fixture import GatewayProcess
from tests.support.inference_fixture import InferenceProcess

pytestmark = pytest.mark.slow
# Big enough that a CPU server is still computing when it is killed (the images come back at the end).
SLOW = {"width": 1024, "height": 1024, "num_images": 4, "steps": 4}


def _ledger(gw: GatewayProcess, fn: Callable[[SqliteLedger], Any]) -> Any:
    db = Database(gw.state_dir / "gateway.sqlite3")
    try:
        return asyncio.run(fn(SqliteLedger(db)))
    finally:
        db.close()


def _artist(gw: GatewayProcess, credits: int) -> tuple[str, dict[str, str]]:
    user_id, headers = signup(gw)
    _ledger(gw, lambda ledger: ledger.credit_purchase(user_id=user_id, credits=credits, key=f"t:{uuid.uuid4()}"))
    return user_id, headers


def _generate(gw: GatewayProcess, headers: dict[str, str], params: dict[str, Any]) -> Any:
    status, body = gw.json("POST", "/v1/generations", json_body={"prompt": "a lighthouse", "params": params},
                           headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert status == 202, body
    return body


def _done(gw: GatewayProcess, headers: dict[str, str], generation_id: str) -> Any:
    def finished() -> Any:
        status, body = gw.json("GET", f"/v1/generations/{generation_id}", headers=headers)
        assert status == 200, body
        return body if body["status"] in ("succeeded", "failed") else None

    return wait_until(finished, f"generation {generation_id}", timeout_s=120)


def _calls(gw: GatewayProcess, generation_id: str) -> list[str]:
    """The targets the gateway called for a generation, in order (from its log)."""
    return [line.split("target=")[1].split()[0] for line in gw.log_text().splitlines()
            if "inference_call" in line and generation_id in line]


@pytest.fixture
def servers(inference_factory: Callable[..., InferenceProcess]) -> list[InferenceProcess]:
    return [inference_factory() for _ in range(3)]


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayProcess], servers: list[InferenceProcess]) -> GatewayProcess:
    targets = [f"dns:///{servers[0].grpc_target}", servers[1].grpc_target, servers[2].grpc_target]
    return gateway_factory(env={"GATEWAY_INFERENCE_TARGET": ",".join(targets), "GATEWAY_GENERATION_TIMEOUT_S": "90",
                                "GATEWAY_HOLD_TIMEOUT_S": "120"})


def test_a_server_killed_mid_stream_charges_nobody_for_undelivered_images(
        gateway: GatewayProcess, servers: list[InferenceProcess]) -> None:
    user_id, headers = _artist(gateway, credits=4)
    generation = _generate(gateway, headers, SLOW)
    first = wait_until(lambda: _calls(gateway, generation["id"]), "the first inference call")[0]
    victim = next(s for s in servers if s.grpc_target in first)
    victim.kill()  # SIGKILL mid-stream
    final = _done(gateway, headers, generation["id"])
    balance = _ledger(gateway, lambda ledger: ledger.balance(user_id))
    delivered = len(final.get("images") or []) if final["status"] == "succeeded" else 0
    assert (balance.spent, balance.pending, balance.available) == (delivered, 0, 4 - delivered), (final, balance)
    calls = _calls(gateway, generation["id"])
    if final["status"] == "succeeded":  # retried on a live server: charged once, for what it delivered
        assert delivered == 4 and len(calls) == 2 and victim.grpc_target not in calls[1], calls
    else:  # an image had come back before the kill: not resumable, voided
        assert final["error_code"].startswith("inference_"), final
    assert _ledger(gateway, lambda ledger: ledger.reconcile()).ok


def test_a_dead_server_gets_no_new_work(gateway: GatewayProcess, servers: list[InferenceProcess]) -> None:
    user_id, headers = _artist(gateway, credits=6)
    dead = servers[2]
    dead.kill()

    def noticed() -> bool:
        _status, health = gateway.health()
        return f"{dead.grpc_target}: UNAVAILABLE" in health["checks"]["inference"]["detail"]

    wait_until(noticed, "the gateway seeing the dead server")
    generations = [_generate(gateway, headers, {"width": 64, "height": 64}) for _ in range(6)]
    finals = [_done(gateway, headers, g["id"]) for g in generations]
    assert [f["status"] for f in finals] == ["succeeded"] * 6, finals
    calls = [target for g in generations for target in _calls(gateway, g["id"])]
    assert dead.grpc_target not in calls and len(calls) == 6, calls
    assert {f"dns:///{servers[0].grpc_target}", servers[1].grpc_target} == set(calls)  # both live ones work
    assert _ledger(gateway, lambda ledger: ledger.balance(user_id)).spent == 6


def test_a_full_queue_sends_the_work_to_another_server(gateway_factory: Callable[..., GatewayProcess],
                                                       inference_factory: Callable[..., InferenceProcess]) -> None:
    small = inference_factory(env={"INFERENCE_QUEUE_MAX": "1", "INFERENCE_MAX_BATCH": "1"})
    roomy = inference_factory()
    gw = gateway_factory(env={"GATEWAY_INFERENCE_TARGET": f"{small.grpc_target},{roomy.grpc_target}"})
    user_id, headers = _artist(gw, credits=6)
    with ThreadPoolExecutor(max_workers=6) as pool:  # three in turn for the small queue: it refuses one at least
        results = list(pool.map(lambda i: gw.request(
            "POST", "/v1/generations", headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json_body={"prompt": f"large canvas {i}", "params": {"width": 1024, "height": 1024}}), range(6)))
    assert [status for status, _h, _b in results] == [202] * 6, results  # no 503: the other server had room
    ids = [json.loads(body)["id"] for _s, _h, body in results]
    assert [_done(gw, headers, gid)["status"] for gid in ids] == ["succeeded"] * 6
    refused = [line for line in gw.log_text().splitlines()
               if "inference_retried_elsewhere" in line and "RESOURCE_EXHAUSTED" in line]
    assert refused and all(small.grpc_target in line for line in refused), refused
    balance = _ledger(gw, lambda ledger: ledger.balance(user_id))
    assert (balance.available, balance.pending, balance.spent) == (0, 0, 6)

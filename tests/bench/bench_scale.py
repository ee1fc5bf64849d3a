"""Scale-out benchmarks (``python -m tests.bench.harness scale``), each beside its baseline in the same run.

1. ``pg_hold_post_pairs_per_s``: the ledger's hold+post pairs on PostgreSQL (PostgresLedger) vs a bare
   psycopg loop doing the same writes in the same transactions — the credits bench's measurement
   (``tests.bench.bench_gateway_ledger.pg_rates``), reused. Goal ≥ 0.5.
2. ``generations_per_s_3_replicas``: card generations/s through three ``python -m gateway`` replicas on
   one PostgreSQL vs through one replica, same load (``POST /v1/generations`` then polling until delivered,
   64x64 CPPN on one real inference server, 16 concurrent clients spread round-robin over the replicas).
   On a 2-core box the replicas, PostgreSQL, the inference server and the load generator share the same
   two cores, so this ratio measures the CPU ceiling, not how far replicas scale on their own machines.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from tests.bench.bench_gateway_ledger import pg_rates
from tests.bench.harness import Reporter

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 16
GENERATIONS = 240
PASSWORD = "bench password 123"
POLL_S = 0.05


async def _artist(url: str, db_url: str, credits: int) -> dict[str, str]:
    from gateway.credits.postgres_store import PostgresLedger

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        reply = await client.post("/v1/auth/signup", json={"email": f"bench-{uuid.uuid4().hex[:10]}@example.com",
                                                          "password": PASSWORD})
        reply.raise_for_status()
        token = reply.json()["access_token"]
    payload = token.split(".")[1]
    user_id = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
    ledger = await PostgresLedger.open(db_url, run_migrations=False, max_size=1)
    try:
        await ledger.credit_purchase(user_id=user_id, credits=credits, key=f"bench:{uuid.uuid4().hex}")
    finally:
        await ledger.close()
    return {"Authorization": f"Bearer {token}"}


async def _drive(urls: list[str], headers: dict[str, str], count: int) -> float:
    """``count`` generations by CONCURRENCY workers, worker w on replica w mod len(urls); generations/s."""
    clients = [httpx.AsyncClient(base_url=u, timeout=120) for u in urls]
    remaining = iter(range(count))

    async def worker(w: int) -> None:
        client = clients[w % len(clients)]
        for i in remaining:
            reply = await client.post("/v1/generations", headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                                      json={"prompt": f"bench {i}", "params": {"width": 64, "height": 64}})
            reply.raise_for_status()
            generation_id = reply.json()["id"]
            while True:  # until delivered (polling the same replica; both arms poll alike)
                await asyncio.sleep(POLL_S)
                status = (await client.get(f"/v1/generations/{generation_id}", headers=headers)).json()["status"]
                if status in ("succeeded", "failed"):
                    if status == "failed":
                        raise RuntimeError(f"generation {generation_id} failed during the bench")
                    break

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    finally:
        for client in clients:
            await client.aclose()
    return count / (time.perf_counter() - started)


def _replica_rates(report: Reporter) -> None:
    from tests.gateway.credits.pg_server import PostgresServer
    from tests.support.gateway_fixture import GatewayProcess
    from tests.support.inference_fixture import InferenceProcess

    server = PostgresServer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, \
                InferenceProcess(data_dir=Path(tmp) / "inference") as inference:
            db_url = server.new_schema()
            keys = Path(tmp) / "keys"
            keys.mkdir()
            (keys / "jwt").write_text(secrets.token_hex(32))
            env = {"GATEWAY_DATABASE_URL": db_url, "GATEWAY_INFERENCE_TARGET": inference.grpc_target,
                   "GATEWAY_JWT_SECRET_FILE": str(keys / "jwt"), "GATEWAY_LOG_LEVEL": "WARNING"}
            gateways = [GatewayProcess(state_dir=Path(tmp) / "state", env=env).start() for _ in range(3)]
            try:
                urls = [g.url for g in gateways]
                headers = asyncio.run(_artist(urls[0], db_url, credits=4 * GENERATIONS + 100))
                asyncio.run(_drive(urls, headers, 48))  # warm-up of every replica
                one, three = [], []
                for _ in range(2):  # interleaved rounds, best of each
                    one.append(asyncio.run(_drive(urls[:1], headers, GENERATIONS)))
                    three.append(asyncio.run(_drive(urls, headers, GENERATIONS)))
            finally:
                for g in gateways:
                    g.close()
    finally:
        server.stop()
    report.figure(
        "generations_per_s_3_replicas", max(three), "generations/s", baseline=max(one),
        note=f"POST /v1/generations + polling to delivery (JWT, hold+post on the shared PostgreSQL ledger, 64x64"
             f" CPPN on one real inference server) through 3 gateway replicas vs 1, {CONCURRENCY} concurrent clients,"
             f" {GENERATIONS} generations per round, best of 2 interleaved rounds; all processes share this"
             f" machine's {os.cpu_count()} CPUs,"
             " so the ratio shows the CPU ceiling of the box, not the replicas' own scaling")


def run(report: Reporter) -> None:
    from tests.gateway.credits.pg_server import PostgresServer

    server = PostgresServer().start()
    try:
        ledger, raw = pg_rates(server.new_schema(), 1)
    finally:
        server.stop()
    report.figure("pg_hold_post_pairs_per_s", ledger, "pairs/s", baseline=raw, goal=0.5,
                  note="PostgresLedger hold+post, one caller, vs a bare sync psycopg loop with the same statements"
                       " and transactions on the same local server (bench_gateway_ledger.pg_rates)")
    _replica_rates(report)


if __name__ == "__main__":
    from tests.bench.harness import main

    raise SystemExit(main(["scale"]))

"""Gateway benchmarks (``python -m tests.bench.harness gateway``), each beside its baseline in the same run.

1. ``generations_per_s``: paid generations through the whole HTTP path — ``POST /api/generate-art``
   with a JWT: auth, credit hold, inference (a zero-cost in-process stand-in), PNG stored (fsync),
   post + burn intent, signed URLs — against a bare Litestar route on the same uvicorn server (same
   middleware), both driven by the same concurrent client. Goal ≥ 0.25. p50/p99 reported.
2. ``artist_latency``: one artist, sequential, the built-in CPPN model in a real ``python -m inference``
   process: ``/api/generate-art`` through a real ``python -m gateway`` process against calling
   inference's ``Generate`` directly over gRPC. Goal ≤ 1.05×.

The load generator runs in this process; the servers are child processes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.bench.harness import Reporter

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 16
HELLO_REQUESTS = 3000
GENERATIONS = 800
ROUNDS = 2
LATENCY_PAIRS = 32
PASSWORD = "bench password 123"


def _fastest_quarter(samples: list[float]) -> float:
    """Mean of the fastest quarter: on a shared, loaded box the slow tail is other processes' noise
    (the same statistic as bench_inference's overhead figure)."""
    ordered = sorted(samples)
    quarter = ordered[: max(1, len(ordered) // 4)]
    return sum(quarter) / len(quarter)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _drive(count: int, call: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """``count`` calls by CONCURRENCY workers; returns (calls/s, per-call latencies in s)."""
    latencies: list[float] = []
    next_index = iter(range(count))

    async def worker() -> None:
        for i in next_index:
            started = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - started), latencies


def _serve_stand_in(state_dir: str, port: int) -> None:
    """Child process: the gateway app with the zero-cost inference stand-in and a bare route."""
    import uvicorn
    from litestar import get

    from common.logging import configure_logging
    from gateway.generations.inference import InferenceClient
    from gateway.lib.db import Database
    from gateway.server.container import Container
    from gateway.server.core import build_app
    from gateway.server.domains import all_migrations
    from gateway.settings import GatewaySettings
    from tests.gateway.generations.fakes import FakeInference

    @get("/bench/hello", sync_to_thread=False)
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    async def main() -> None:
        settings = GatewaySettings(state_dir=Path(state_dir), port=port, log_level="WARNING",
                                   auth_rate_per_minute=100000, max_concurrent_generations=256)
        configure_logging("gateway", "WARNING", json=True)
        db = Database(settings.sqlite_path)
        db.migrate(all_migrations())
        container = Container(settings=settings, db=db)
        container.provide(InferenceClient, FakeInference(steps=1))  # type: ignore[type-abstract]
        built = await build_app(settings, container=container)
        built.app.register(hello)
        config = uvicorn.Config(built.app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                lifespan="on", backlog=2048)
        await uvicorn.Server(config).serve()

    asyncio.run(main())


def _free_port() -> int:
    from tests.support.devnet_fixture import free_ports

    return free_ports(1)[0]


async def _wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


async def _artist(client: httpx.AsyncClient, db_path: Path, credits: int) -> dict[str, str]:
    from gateway.credits.sqlite_store import SqliteLedger
    from gateway.lib.db import Database

    reply = await client.post("/v1/auth/signup", json={"email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                                                       "password": PASSWORD})
    reply.raise_for_status()
    token = reply.json()["access_token"]
    payload = token.split(".")[1]
    user_id = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
    db = Database(db_path)
    try:
        await SqliteLedger(db).credit_purchase(user_id=user_id, credits=credits, key=f"bench:{uuid.uuid4().hex}")
    finally:
        db.close()
    return {"Authorization": f"Bearer {token}"}


async def _throughput(url: str, db_path: Path) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        headers = await _artist(client, db_path, credits=ROUNDS * GENERATIONS + 100)

        async def hello(_: int) -> None:
            (await client.get("/bench/hello")).raise_for_status()

        async def generate(i: int) -> None:
            reply = await client.post("/api/generate-art", json={"prompt": f"bench {uuid.uuid4().hex} {i}"},
                                      headers=headers)
            reply.raise_for_status()

        await _drive(200, hello)  # warm-up
        await _drive(50, generate)
        results: dict[str, Any] = {"hello": [], "gen": [], "hello_lat": [], "gen_lat": []}
        for _ in range(ROUNDS):  # interleaved rounds, best of each
            rate, lat = await _drive(HELLO_REQUESTS, hello)
            results["hello"].append(rate)
            results["hello_lat"].extend(lat)
            rate, lat = await _drive(GENERATIONS, generate)
            results["gen"].append(rate)
            results["gen_lat"].extend(lat)
        return results


def _generations_per_s(report: Reporter) -> None:
    with tempfile.TemporaryDirectory() as state:
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_gateway", "--serve-stand-in", state,
                                  str(port)], cwd=ROOT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            asyncio.run(_wait_http(url + "/bench/hello"))
            r = asyncio.run(_throughput(url, Path(state) / "gateway.sqlite3"))
        finally:
            child.terminate()
            child.wait(20)
    hello, gen = max(r["hello"]), max(r["gen"])
    report.figure(
        metric="generations_per_s", value=gen, unit="generations/s", baseline=hello, goal=0.25,
        note=f"POST /api/generate-art (JWT, hold, zero-cost inference, PNG stored, post + intent) vs GET of a "
             f"bare Litestar route on the same uvicorn server; {CONCURRENCY} concurrent clients, best of "
             f"{ROUNDS} interleaved rounds; generation p50 {_pct(r['gen_lat'], 0.5) * 1000:.1f} ms, p99 "
             f"{_pct(r['gen_lat'], 0.99) * 1000:.1f} ms; bare route p50 {_pct(r['hello_lat'], 0.5) * 1000:.1f} "
             f"ms, p99 {_pct(r['hello_lat'], 0.99) * 1000:.1f} ms")


async def _latency_pairs(inference_target: str, gateway_url: str, db_path: Path) -> tuple[list[float], list[float]]:
    from common.grpcutil import open_channel
    from common.rpc.creatorpass.v1 import inference_pb2, inference_pb2_grpc

    channel = open_channel(inference_target)
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    direct: list[float] = []
    served: list[float] = []
    async with httpx.AsyncClient(base_url=gateway_url, timeout=120) as client:
        headers = await _artist(client, db_path, credits=LATENCY_PAIRS + 10)
        for i in range(LATENCY_PAIRS + 2):
            prompt = f"a quiet harbour at dawn {i}"
            started = time.perf_counter()
            async for _event in stub.Generate(inference_pb2.GenerateRequest(prompt=prompt, request_id=str(i)),
                                              timeout=120):
                pass
            direct_s = time.perf_counter() - started
            started = time.perf_counter()
            reply = await client.post("/api/generate-art", json={"prompt": prompt + " (gateway)"}, headers=headers)
            reply.raise_for_status()
            served_s = time.perf_counter() - started
            if i >= 2:  # the first pairs warm both paths up
                direct.append(direct_s)
                served.append(served_s)
    await channel.close(grace=None)
    return direct, served


def _artist_latency(report: Reporter) -> None:
    from tests.support.gateway_fixture import GatewayProcess
    from tests.support.inference_fixture import InferenceProcess

    with tempfile.TemporaryDirectory() as tmp, \
            InferenceProcess(data_dir=Path(tmp) / "inference", env={"INFERENCE_MAX_BATCH": "1"}) as inference, \
            GatewayProcess(state_dir=Path(tmp) / "gateway", env={
                "GATEWAY_INFERENCE_TARGET": inference.grpc_target, "GATEWAY_LOG_LEVEL": "WARNING"}) as gateway:
        direct, served = asyncio.run(_latency_pairs(inference.grpc_target, gateway.url,
                                                    gateway.state_dir / "gateway.sqlite3"))
    direct_s, served_s = _fastest_quarter(direct), _fastest_quarter(served)
    report.figure(
        metric="artist_latency", value=served_s * 1000, unit="ms", baseline=direct_s * 1000, goal=1.05,
        higher_is_better=False,
        note=f"built-in CPPN at its default size (512x512), INFERENCE_MAX_BATCH=1, one sequential artist; "
             f"{len(served)} alternating pairs, mean of the fastest quarter: /api/generate-art through python -m "
             f"gateway {served_s * 1000:.1f} ms vs Generate over gRPC directly {direct_s * 1000:.1f} ms (medians "
             f"{statistics.median(served) * 1000:.1f} / {statistics.median(direct) * 1000:.1f} ms, p90 "
             f"{_pct(served, 0.9) * 1000:.1f} / {_pct(direct, 0.9) * 1000:.1f} ms)")


def run(report: Reporter) -> None:
    _generations_per_s(report)
    _artist_latency(report)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-stand-in":
        _serve_stand_in(sys.argv[2], int(sys.argv[3]))
    else:
        from tests.bench.harness import main

        raise SystemExit(main(["gateway"]))

"""Wallet-path benchmark (``make bench BENCH=web3``): DESIGN §10's "quote → images ≤ 1.1 × max(inference,
confirmation) with speculative generation", and quote building vs a bare Litestar route.

Everything is real except the image model: a devnet with 1 s blocks and an indexer (processes on
loopback), the gateway app served by uvicorn on loopback, HTTP from an httpx client, a pycardano
wallet signing each quote. Inference is a generator that takes ``INFERENCE_S`` (so the figure
measures the payment pipeline, not a model), following the job runner's contract.

Three kinds of run, interleaved (``ROUNDS`` each), each timed from ``POST /v1/web3/quotes`` to the
images being released (``GET /v1/web3/quotes/{id}`` says delivered), ``min_confirmations`` = 3:

- ``payment`` — zero-cost inference: the confirmation time alone (the baseline's other half);
- ``speculative`` — inference starts once the tx is in the mempool (what the gateway does), with
  ``INFERENCE_S`` and with ``LONG_INFERENCE_S``;
- ``sequential`` — inference starts only after the payment is deep enough (what the seed does).

Every run starts just after a block, so all see the same phase of the block timer.

Figures: ``speculative_quote_to_images_s`` against ``max(INFERENCE_S, median payment)`` (goal ≤ 1.1), and
``speculative_long_inference_quote_to_images_s`` the same with an inference longer than the confirmation;
``sequential_quote_to_images_s`` against the same baseline (reported); ``quotes_per_s`` (16
concurrent clients, each quote a fresh tx built from the indexer's UTxOs) against a bare Litestar
``GET`` served the same way (reported ratio).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn
from litestar import Litestar, get

from common.logging import configure_logging
from gateway.lib.db import Database
from gateway.server.container import Container
from gateway.server.core import build_app
from gateway.server.domains import all_migrations
from gateway.settings import GatewaySettings
from gateway.web3 import quotes as quotes_module
from gateway.web3.payment import PaidGenerator, PaymentLike
from tests.gateway.web3.conftest import ASSET
from tests.gateway.web3.wallet import TestWallet
from tests.support.devnet_fixture import DevnetProcess, free_ports
from tests.support.indexer_fixture import IndexerProcess

if TYPE_CHECKING:
    from tests.bench.harness import Reporter

INFERENCE_S = 2.5  # shorter than the confirmation (~3 s): the chain dominates
LONG_INFERENCE_S = 4.5  # longer: inference dominates
MIN_CONFIRMATIONS = 3
ROUNDS = 4
QUOTE_CLIENTS = 16
QUOTE_RUN_S = 2.0
RATE_ROUNDS = 3
GOAL = 1.1


@dataclass
class ModeGenerator:
    """``mode`` is set before each run: payment (no inference), speculative, sequential."""

    mode: str = "speculative"
    modes: dict[str, str] = field(default_factory=dict)

    async def run(self, *, owner: str, prompt: str, params: dict[str, Any], payment: PaymentLike) -> list[str]:
        mode = self.modes.get(prompt, self.mode)
        await payment.authorize()
        inference_s = {"payment": 0.0, "speculative_long": LONG_INFERENCE_S}.get(mode, INFERENCE_S)
        if mode == "sequential":
            await payment.wait_until_releasable()
            await asyncio.sleep(inference_s)
        else:
            await asyncio.sleep(inference_s)
            await payment.wait_until_releasable()
        await payment.capture([0])
        return ["/v1/images/bench.png"]


class ServerThread:
    """A uvicorn server for ``app`` on a loopback port, in its own thread and loop."""

    def __init__(self, app: Any) -> None:
        (self.port,) = free_ports(1)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


async def _one_payment(client: httpx.AsyncClient, wallet: TestWallet, prompt: str) -> float:
    started = time.perf_counter()
    quote = (await client.post("/v1/web3/quotes", json={"prompt": prompt, "address": wallet.bech32})).json()
    witness = await asyncio.to_thread(wallet.sign_tx, quote["tx_id"])  # pycardano signing: off the loop
    response = await client.post(f"/v1/web3/quotes/{quote['quote_id']}/submit", json={"witness_set": witness})
    response.raise_for_status()
    while True:
        view = (await client.get(f"/v1/web3/quotes/{quote['quote_id']}")).json()
        if view["state"] == "delivered":
            return time.perf_counter() - started
        if view["state"] in ("failed", "expired"):
            raise RuntimeError(f"bench payment failed: {view}")
        await asyncio.sleep(0.02)


async def _just_after_a_block(dev: DevnetProcess) -> None:
    """Start each run at the same phase of the 1 s block timer: the confirmation time depends on it."""
    height = (await asyncio.to_thread(dev.info))["tip"]["height"]
    while (await asyncio.to_thread(dev.info))["tip"]["height"] == height:
        await asyncio.sleep(0.01)


async def _latencies(base_url: str, generator: ModeGenerator, wallets: list[TestWallet],
                     dev: DevnetProcess) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"payment": [], "speculative": [], "sequential": [], "speculative_long": []}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for wallet in wallets:  # the funding block
            while (await client.get(f"/v1/wallets/{wallet.bech32}/balance")).json().get("create") != 100:
                await asyncio.sleep(0.1)
        for round_index in range(ROUNDS):
            for mode in results:
                prompt = f"{mode} {round_index}"
                generator.modes[prompt] = mode
                wallet = wallets[len(generator.modes) % len(wallets)]
                await _just_after_a_block(dev)
                results[mode].append(await _one_payment(client, wallet, prompt))
    return results


async def _rate(base_url: str, method: str, path: str, body: dict[str, Any] | None) -> float:
    done = 0
    stop_at = time.perf_counter() + QUOTE_RUN_S

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            response = await client.request(method, path, json=body)
            if response.status_code >= 300:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
            done += 1

    limits = httpx.Limits(max_connections=QUOTE_CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(QUOTE_CLIENTS)))
        return done / (time.perf_counter() - started)


@get("/hello", sync_to_thread=False)
def hello() -> dict[str, str]:
    return {"hello": "world"}


def run(report: Reporter) -> None:
    configure_logging("bench-web3", "WARNING", json=False)
    treasury = TestWallet()
    wallets = [TestWallet() for _ in range(4)]
    with tempfile.TemporaryDirectory(prefix="bench-web3-") as tmp, DevnetProcess(block_time=1.0) as dev:
        env = {"INDEXER_TREASURY_ADDRESS": treasury.bech32, "INDEXER_POLICY_ID": ASSET.policy_id,
               "INDEXER_ASSET_NAME": ASSET.asset_name, "INDEXER_LOG_LEVEL": "WARNING"}
        with IndexerProcess(ogmios_url=dev.ogmios_url, kupo_url=dev.kupo_url, db_path=Path(tmp) / "idx.sqlite3",
                            env=env) as indexer:
            for wallet in wallets:
                dev.fund(wallet.bech32, 200_000_000, {str(ASSET): 100})
            indexer.wait_health({200}, timeout_s=60)
            settings = GatewaySettings(
                state_dir=Path(tmp) / "gw", log_level="WARNING", log_json=False,
                web3_pay_to_address=treasury.bech32, asset_policy_id=ASSET.policy_id,
                asset_name_hex=ASSET.asset_name, indexer_target=indexer.grpc_target,
                web3_min_confirmations=MIN_CONFIRMATIONS)
            generator = ModeGenerator()
            db = Database(settings.sqlite_path)
            db.migrate(all_migrations())
            container = Container(settings=settings, db=db)
            container.provide(PaidGenerator, generator)  # type: ignore[type-abstract]
            gateway = asyncio.run(build_app(settings, container=container))
            bare = Litestar(route_handlers=[hello], debug=False)
            with ServerThread(gateway.app) as base_url, ServerThread(bare) as bare_url:
                latencies = asyncio.run(_latencies(base_url, generator, wallets, dev))
                quote_body = {"prompt": "bench", "address": wallets[0].bech32}
                quotes_module.MAX_OPEN_QUOTES_PER_ADDRESS = 10**9  # measure building, not the per-address cap
                quote_rates, hello_rates = [], []
                for _ in range(RATE_ROUNDS):  # interleaved: the box is shared, its load drifts
                    quote_rates.append(asyncio.run(_rate(base_url, "POST", "/v1/web3/quotes", quote_body)))
                    hello_rates.append(asyncio.run(_rate(bare_url, "GET", "/hello", None)))
                quotes_per_s, hello_per_s = statistics.median(quote_rates), statistics.median(hello_rates)
    confirmation = statistics.median(latencies["payment"])
    baseline = max(INFERENCE_S, confirmation)
    payment_runs = ", ".join(f"{x:.2f}" for x in latencies["payment"])
    note = (f"median of {ROUNDS}, each started just after a block; 1 s blocks, min_confirmations={MIN_CONFIRMATIONS},"
            f" inference {INFERENCE_S} s; confirmation alone {confirmation:.2f} s (runs {payment_runs})")
    speculative = statistics.median(latencies["speculative"])
    sequential = statistics.median(latencies["sequential"])
    runs = ", ".join(f"{x:.2f}" for x in latencies["speculative"])
    report.figure("speculative_quote_to_images_s", speculative, "s", baseline=baseline, goal=GOAL,
                  higher_is_better=False, note=f"{note}; runs {runs}")
    long_runs = latencies["speculative_long"]
    report.figure("speculative_long_inference_quote_to_images_s", statistics.median(long_runs), "s",
                  baseline=max(LONG_INFERENCE_S, confirmation), goal=GOAL, higher_is_better=False,
                  note=f"inference {LONG_INFERENCE_S} s (longer than the confirmation); runs "
                  + ", ".join(f"{x:.2f}" for x in long_runs))
    report.figure("sequential_quote_to_images_s", sequential, "s", baseline=baseline, higher_is_better=False,
                  note="inference after the payment is deep (the seed's order); runs "
                  + ", ".join(f"{x:.2f}" for x in latencies["sequential"]))
    report.figure("quotes_per_s", quotes_per_s, "quotes/s", baseline=hello_per_s,
                  note=f"median of {RATE_ROUNDS} interleaved rounds, {QUOTE_CLIENTS} concurrent clients for"
                  f" {QUOTE_RUN_S:g} s each; baseline: a bare Litestar"
                  " GET served the same way; a quote = tip + params + UTxOs from the indexer, tx build, insert")

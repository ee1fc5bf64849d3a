"""The resource budget of the devnet stack, for the README's "SPO add-on" table.

    .venv/bin/python -m tests.bench.measure_resources [--generations 50] [--idle-s 20] [--no-burner]

Starts the embedded stack as processes exactly as ``make up`` does (creatorpass.up: devnet, Stripe sandbox,
signer, inference on the CPU, indexer, gateway) on free ports in a temporary home, then samples each
service's CPU (share of one core, from /proc/PID/stat utime+stime over the window) and RSS (/proc/PID/status
VmRSS, its peak over the window) at idle and under the card path: sign-up, a pack bought by card through the
Stripe sandbox (PaymentMethod + PaymentIntent confirmed as Stripe.js would, credited by the webhook), then
N generations through the gateway's HTTP API one after another, and (with the burner on, the default) until
the burns of those generations are final on the devnet, so the signer and the indexer do their share. Prints
a markdown table. A measurement of this machine, not a test: nothing here passes or fails on a number.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from creatorpass.up import PACKS, Ports, stop_all, up

__all__ = ["main"]

TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
PASSWORD = "resource-budget-1"


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _rss_kib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB


@dataclass
class Window:
    """CPU and peak RSS of each service's process over one phase."""

    pids: dict[str, int]
    start: dict[str, int] = field(default_factory=dict)
    peak_kib: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    began: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Window:
        self.began = time.monotonic()
        self.start = {n: _cpu_ticks(p) for n, p in self.pids.items()}
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.peak_kib[name] = max(self.peak_kib.get(name, 0), _rss_kib(pid))
            self._stop.wait(0.25)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        elapsed = time.monotonic() - self.began
        self.cpu = {n: (_cpu_ticks(p) - self.start[n]) / TICKS / elapsed for n, p in self.pids.items()}


def _wait(what: str, check: Any, timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _finished(reply: httpx.Response) -> dict[str, Any] | None:
    body: dict[str, Any] = reply.json()
    return body if body["status"] in ("succeeded", "failed") else None


def card_path(gateway: str, stripe_url: str, generations: int) -> None:
    """Sign up, buy a pack by card through the sandbox, run ``generations`` generations one after another."""
    import stripe

    http = httpx.Client(base_url=gateway, timeout=60)
    reply = http.post("/v1/auth/signup", json={"email": f"budget-{uuid.uuid4().hex[:8]}@example.com",
                                               "password": PASSWORD})
    reply.raise_for_status()
    auth = {"Authorization": f"Bearer {reply.json()['access_token']}"}
    pack = max(PACKS.split(";"), key=lambda p: int(p.split(":")[1]))
    pack_id, credits = pack.split(":")[0], int(pack.split(":")[1])
    bought = 0
    browser = stripe.StripeClient("pk_test_creatorpass_sandbox", base_addresses={"api": stripe_url})
    while bought < generations:
        card = browser.v1.payment_methods.create(params={
            "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034,
                                                  "cvc": "123"}})
        intent = http.post("/v1/billing/payment-intents", json={"pack": pack_id}, headers=auth)
        intent.raise_for_status()
        browser.v1.payment_intents.confirm(intent.json()["payment_intent_id"], params={
            "payment_method": card.id, "client_secret": intent.json()["client_secret"]})
        bought += credits
        _wait("the webhook's credit",
              lambda want=bought: http.get("/v1/account", headers=auth).json()["credits_available"] >= want)
    for i in range(generations):
        started = http.post("/v1/generations", json={"prompt": f"a lighthouse at dusk, study {i}", "params": {}},
                            headers={**auth, "Idempotency-Key": f"budget-{i}"})
        started.raise_for_status()
        gid = started.json()["id"]
        done = _wait("a generation", lambda gid=gid: _finished(http.get(f"/v1/generations/{gid}", headers=auth)))
        if done["status"] != "succeeded":
            raise RuntimeError(f"generation {gid} failed: {done}")


def _burned(gateway: str) -> float:
    text = httpx.get(f"{gateway}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("gateway_burn_tokens_final_total"))


def wait_for_burns(gateway: str, tokens: int, timeout_s: float) -> bool:
    """Until ``tokens`` $CREATE are burned at final depth (the burner's own counter), or the timeout."""
    try:
        _wait("the burns", lambda: _burned(gateway) >= tokens, timeout_s)
    except RuntimeError:
        return False
    return True


def table(idle: Window, load: Window, generations: int, load_s: float, burns: str) -> str:
    rows = ["| service | CPU idle (cores) | RSS idle (MiB) | CPU under load (cores) | RSS peak under load (MiB) |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for name in idle.pids:
        rows.append(f"| {name} | {idle.cpu[name]:.3f} | {idle.peak_kib[name] / 1024:.0f} | "
                    f"{load.cpu[name]:.3f} | {load.peak_kib[name] / 1024:.0f} |")
    rows.append(f"| **total** | {sum(idle.cpu.values()):.3f} | {sum(idle.peak_kib.values()) / 1024:.0f} | "
                f"{sum(load.cpu.values()):.3f} | {sum(load.peak_kib.values()) / 1024:.0f} |")
    cores = os.cpu_count()
    host = f"{platform.machine()}, {cores} cores, Python {platform.python_version()}"
    return "\n".join(rows) + (f"\n\nMeasured {datetime.now(UTC):%Y-%m-%d} on {host}: load = sign-up, card "
                              f"purchase via the Stripe sandbox, {generations} generations{burns}, in {load_s:.0f} s.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--no-burner", action="store_true", help="leave the burner off, as `make up` does")
    parser.add_argument("--burn-timeout-s", type=float, default=120.0)
    args = parser.parse_args(argv)
    if not args.no_burner:  # the gateway's env is os.environ plus make up's own (creatorpass/up.py _start)
        os.environ.update(GATEWAY_BURN_ENABLED="true", GATEWAY_BURN_CONFIRMATIONS="3", GATEWAY_BURN_BATCH_WAIT_S="2")
    with tempfile.TemporaryDirectory(prefix="creatorpass-budget-") as home:
        ports = Ports.free()
        services = up(Path(home), ports)
        try:
            pids = {svc.name: svc.proc.pid for svc in services if svc.proc}
            time.sleep(5)  # let start-up work (first sync, model warm-up) settle before "idle"
            with Window(pids) as idle:
                time.sleep(args.idle_s)
            began = time.monotonic()
            gateway = f"http://127.0.0.1:{ports.gateway}"
            burns = ""
            with Window(pids) as load:
                card_path(gateway, f"http://127.0.0.1:{ports.stripe}", args.generations)
                if not args.no_burner:
                    final = wait_for_burns(gateway, args.generations, args.burn_timeout_s)
                    burns = (" and their burns final at depth 3" if final else
                             f" (burns NOT all final within {args.burn_timeout_s:.0f} s: {_burned(gateway):.0f})")
            print("\n" + table(idle, load, args.generations, time.monotonic() - began, burns), flush=True)
        finally:
            stop_all(services)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

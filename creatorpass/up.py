"""``make up`` / ``creatorpass up``: the appliance on its embedded default, as local processes.

The devnet chain (Ogmios v6 + Kupo v2 + control API), the Stripe sandbox, the signer (encrypted key
file, unix socket), the indexer, inference (built-in CPPN model, CPU) and the gateway with the Creator's
Studio page. State lives under ``var/`` (``CREATORPASS_HOME``): keys, chain, ledger and images survive
a restart; ``--reset`` deletes it. On first start the signer's keys are created (a random key-file
passphrase in ``var/secrets/``, mode 0600), the devnet funds the custodial address with ADA and
$CREATE, the devnet test wallet ``demo`` gets ADA and $CREATE, and a demo card account is created.

Ctrl-C or SIGTERM stops everything (gateway first, chain last) and leaves no process behind.
``--check`` starts everything, waits until all are healthy, prints the endpoints and stops.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["Ports", "main", "stop_all", "up"]

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
START_TIMEOUT_S = 120.0
INITIAL_CREATE = 1_000_000
INITIAL_LOVELACE = 10_000 * 1_000_000
DEMO_WALLET = "demo"
DEMO_WALLET_CREATE = 25
DEMO_EMAIL = "demo@creatorpass.test"
PACKS = "pack10:10:500:usd:10 credits for $5.00;pack50:50:2000:usd:50 credits for $20.00"


@dataclass
class Ports:
    gateway: int = 8080
    ogmios: int = 1337
    kupo: int = 1442
    control: int = 10000
    stripe: int = 12111
    indexer: int = 50052
    indexer_health: int = 1443
    inference: int = 50053
    inference_health: int = 9103
    signer_health: int = 9101

    @classmethod
    def free(cls) -> Ports:
        names = [f.name for f in fields(cls)]
        socks = [socket.socket() for _ in names]
        try:
            for s in socks:
                s.bind(("127.0.0.1", 0))
            return cls(**{n: s.getsockname()[1] for n, s in zip(names, socks, strict=True)})
        finally:
            for s in socks:
                s.close()

    def with_overrides(self, overrides: list[str]) -> Ports:
        for item in overrides:
            name, _, value = item.partition("=")
            if name not in {f.name for f in fields(self)} or not value.isdigit():
                raise SystemExit(f"--port {item!r}: expected NAME=PORT with NAME one of "
                                 f"{', '.join(f.name for f in fields(self))}")
            setattr(self, name, int(value))
        return self

    def busy(self) -> list[tuple[str, int]]:
        taken = []
        for f in fields(self):
            port = getattr(self, f.name)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    taken.append((f.name, port))
        return taken


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health_url: str = ""
    proc: subprocess.Popen[bytes] | None = None


def _http(url: str, body: dict[str, Any] | None = None, timeout_s: float = 10) -> tuple[int | None, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            raw = resp.read()
            return int(resp.status), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw) if raw else None
        except ValueError:
            return err.code, None
    except (OSError, ValueError):
        return None, None


def _wait(what: str, ready: Any, procs: list[Service], home: Path, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for svc in procs:
            if svc.proc and svc.proc.poll() is not None:
                raise RuntimeError(f"{svc.name} exited with code {svc.proc.returncode} while waiting for {what}; "
                                   f"its log: {home / 'logs' / (svc.name + '.log')}")
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def _secret_file(home: Path, name: str, make: Any) -> Path:
    path = home / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path


def _signer_env(home: Path) -> dict[str, str]:
    secret = _secret_file(home, "signer-passphrase", lambda: secrets.token_urlsafe(32))
    run_dir = home / "run"
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    return {"SIGNER_DATA_DIR": str(home / "signer"), "SIGNER_PASSPHRASE_FILE": str(secret),
            "SIGNER_LISTEN": f"unix:{run_dir / 'signer.sock'}"}


def _signer_identity(env: dict[str, str]) -> dict[str, str]:
    full_env = {**os.environ, **env}
    if not Path(env["SIGNER_DATA_DIR"], "keys.json").exists():
        subprocess.run([PY, "-m", "signer", "keys", "init"], env=full_env, check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([PY, "-m", "signer", "keys", "show"], env=full_env, check=True, capture_output=True)
    identity: dict[str, str] = json.loads(out.stdout)
    return identity


def plan(home: Path, ports: Ports, identity: dict[str, str], signer_env: dict[str, str]) -> list[Service]:
    common = {"PYTHONUNBUFFERED": "1"}
    local = "http://127.0.0.1"
    stripe_key = _secret_file(home, "stripe-secret-key", lambda: "sk_test_" + secrets.token_hex(16))
    webhook_secret = _secret_file(home, "stripe-webhook-secret", lambda: "whsec_" + secrets.token_hex(24))
    devnet = Service("devnet", [
        PY, "-m", "devnet", "--state-dir", str(home / "devnet"), "--block-time", "1",
        "--ogmios-port", str(ports.ogmios), "--kupo-port", str(ports.kupo), "--control-port", str(ports.control),
        "--genesis-fund", f"{identity['custodial_address']}={INITIAL_LOVELACE}",
    ], common, f"{local}:{ports.control}/devnet/info")
    stripe_argv = [PY, "-m", "devnet.stripe", "--host", "127.0.0.1", "--port", str(ports.stripe)]
    stripe = Service("stripe-sandbox", stripe_argv, {
        **common, "STRIPE_SANDBOX_API_KEYS": stripe_key.read_text().strip(),
        "STRIPE_SANDBOX_WEBHOOK_URL": f"{local}:{ports.gateway}/v1/billing/webhook",
        "STRIPE_SANDBOX_WEBHOOK_SECRET_FILE": str(webhook_secret),
        "STRIPE_SANDBOX_WEBHOOK_RETRY_SCALE": "0.01",
        "STRIPE_SANDBOX_STATE_FILE": str(home / "stripe" / "state.json"),
    }, f"{local}:{ports.stripe}/_sandbox/health")
    signer = Service("signer", [PY, "-m", "signer", "serve"],
                     {**common, **signer_env, "SIGNER_METRICS_LISTEN": f"127.0.0.1:{ports.signer_health}"},
                     f"{local}:{ports.signer_health}/health")
    indexer = Service("indexer", [PY, "-m", "indexer"], {
        **common,
        "INDEXER_OGMIOS_URL": f"ws://127.0.0.1:{ports.ogmios}", "INDEXER_KUPO_URL": f"{local}:{ports.kupo}",
        "INDEXER_LISTEN": f"127.0.0.1:{ports.indexer}", "INDEXER_HEALTH_PORT": str(ports.indexer_health),
        "INDEXER_DB_PATH": str(home / "indexer" / "indexer.sqlite3"),
        "INDEXER_TREASURY_ADDRESS": identity["custodial_address"], "INDEXER_SINK_ADDRESS": identity["sink_address"],
        "INDEXER_POLICY_ID": identity["policy_id"], "INDEXER_ASSET_NAME": identity["asset_name"],
    }, f"{local}:{ports.indexer_health}/health")
    inference = Service("inference", [PY, "-m", "inference", "serve"], {
        **common, "INFERENCE_LISTEN": f"127.0.0.1:{ports.inference}",
        "INFERENCE_HEALTH_PORT": str(ports.inference_health), "INFERENCE_DATA_DIR": str(home / "inference"),
    }, f"{local}:{ports.inference_health}/health")
    gateway = Service("gateway", [PY, "-m", "gateway", "serve"], {
        **common, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(ports.gateway),
        "GATEWAY_STATE_DIR": str(home / "gateway"), "GATEWAY_NETWORK": "devnet",
        "GATEWAY_CREDIT_PACKS": PACKS,
        "GATEWAY_STRIPE_API_BASE": f"{local}:{ports.stripe}", "GATEWAY_STRIPE_SECRET_KEY_FILE": str(stripe_key),
        "GATEWAY_STRIPE_WEBHOOK_SECRET_FILE": str(webhook_secret),
        "GATEWAY_STRIPE_PUBLISHABLE_KEY": "pk_test_creatorpass_sandbox",
        "GATEWAY_INFERENCE_TARGET": f"127.0.0.1:{ports.inference}",
        "GATEWAY_INDEXER_TARGET": f"127.0.0.1:{ports.indexer}",
        "GATEWAY_SIGNER_TARGET": signer_env["SIGNER_LISTEN"],
        "GATEWAY_ASSET_POLICY_ID": identity["policy_id"], "GATEWAY_ASSET_NAME_HEX": identity["asset_name"],
        "GATEWAY_WEB3_PAY_TO_ADDRESS": identity["custodial_address"],
        "GATEWAY_WEB3_MIN_CONFIRMATIONS": "3",
        "GATEWAY_DEVNET_CONTROL_URL": f"{local}:{ports.control}",
        "GATEWAY_BURN_ENABLED": "true",  # every spent credit is backed by a real burn, batched on chain
    }, f"{local}:{ports.gateway}/health")
    return [devnet, stripe, signer, inference, indexer, gateway]


def _start(svc: Service, home: Path) -> None:
    log_dir = home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{svc.name}.log").open("ab") as log:
        svc.proc = subprocess.Popen(svc.argv, env={**os.environ, **svc.env}, cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)


def stop_all(services: list[Service], grace_s: float = 15.0) -> None:
    """Stop in reverse start order (clients before the chain), each gracefully, then by force."""
    for svc in reversed(services):
        if not svc.proc or svc.proc.poll() is not None:
            continue
        svc.proc.send_signal(signal.SIGTERM)
        try:
            svc.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            svc.proc.kill()
            svc.proc.wait()


def _healthy(svc: Service) -> bool:
    status, _ = _http(svc.health_url, timeout_s=2)
    return status == 200


def _seed_devnet(home: Path, ports: Ports, identity: dict[str, str]) -> dict[str, Any]:
    """First start only: $CREATE for the treasury, ADA and $CREATE for the demo wallet."""
    control = f"http://127.0.0.1:{ports.control}"
    asset = f"{identity['policy_id']}.{identity['asset_name']}"
    _, wallet = _http(f"{control}/devnet/wallets/{DEMO_WALLET}", body={})
    marker = home / "devnet" / ".seeded"
    if not marker.exists():
        for address, lovelace, amount in ((identity["custodial_address"], 5_000_000, INITIAL_CREATE),
                                          (wallet["address"], 100_000_000, DEMO_WALLET_CREATE)):
            status, body = _http(f"{control}/devnet/fund", body={"address": address, "lovelace": lovelace,
                                                                 "assets": {asset: amount}})
            if status != 200:
                raise RuntimeError(f"funding {address} failed: HTTP {status} {body}")
        marker.write_text("ok\n")
    return dict(wallet)


def _demo_account(home: Path, ports: Ports) -> tuple[str, str]:
    password = _secret_file(home, "demo-password", lambda: "demo-" + secrets.token_urlsafe(9)).read_text().strip()
    status, body = _http(f"http://127.0.0.1:{ports.gateway}/v1/auth/signup",
                         body={"email": DEMO_EMAIL, "password": password})
    if status not in (200, 201, 409):
        raise RuntimeError(f"creating the demo account failed: HTTP {status} {body}")
    return DEMO_EMAIL, password


def up(home: Path, ports: Ports) -> list[Service]:
    """Start every service and wait until each is healthy; the caller stops them."""
    signer_env = _signer_env(home)
    identity = _signer_identity(signer_env)
    services = plan(home, ports, identity, signer_env)
    by_name = {svc.name: svc for svc in services}
    try:
        for name in ("devnet", "stripe-sandbox", "inference"):
            _start(by_name[name], home)
        _wait("the devnet", lambda: _healthy(by_name["devnet"]), services, home)
        _, info = _http(f"http://127.0.0.1:{ports.control}/devnet/info")
        # The signer keeps its own clock of the chain (it refuses a caller's slot far from it).
        by_name["signer"].env.update({"SIGNER_SYSTEM_START": str(info["system_start"]),
                                      "SIGNER_SLOT_LENGTH_S": str(info["slot_length_s"])})
        wallet = _seed_devnet(home, ports, identity)
        for name in ("signer", "indexer", "gateway"):
            _start(by_name[name], home)
        for svc in services:
            _wait(svc.name, lambda s=svc: _healthy(s), services, home)
        email, password = _demo_account(home, ports)
    except BaseException:
        stop_all(services)
        raise
    # What is running, for operators and for the test that checks nothing is left behind.
    (home / "run" / "up.json").write_text(json.dumps(
        {"pid": os.getpid(), "services": {s.name: s.proc.pid for s in services if s.proc},
         "health": {s.name: s.health_url for s in services}}, indent=2) + "\n")
    _print_endpoints(home, ports, identity, signer_env, wallet, email, password)
    return services


def _print_endpoints(home: Path, ports: Ports, identity: dict[str, str], signer_env: dict[str, str],
                     wallet: dict[str, Any], email: str, password: str) -> None:
    local = "http://127.0.0.1"
    print(f"""creatorpass is up — open {local}:{ports.gateway}/

  demo card account   {email} / {password}   (test card 4242 4242 4242 4242; 4000 0000 0000 0002 declines)
  demo wallet         "Devnet test wallet" on the page: {wallet.get('address')}  ({DEMO_WALLET_CREATE} $CREATE)

  gateway    {local}:{ports.gateway}/  API {local}:{ports.gateway}/schema  health /health  metrics /metrics
  stripe     sandbox {local}:{ports.stripe}  (webhooks -> {local}:{ports.gateway}/v1/billing/webhook)
  devnet     Ogmios ws://127.0.0.1:{ports.ogmios}  Kupo {local}:{ports.kupo}  control {local}:{ports.control}
  signer     {signer_env['SIGNER_LISTEN']}  health+metrics {local}:{ports.signer_health}/health, /metrics
             custodial {identity['custodial_address']}
             $CREATE {identity['policy_id']}.{identity['asset_name']}
  indexer    gRPC 127.0.0.1:{ports.indexer}  health {local}:{ports.indexer_health}/health, /metrics
  inference  gRPC 127.0.0.1:{ports.inference}  health {local}:{ports.inference_health}/health, /metrics

  state in {home}, logs in {home / 'logs'}; Ctrl-C (or SIGTERM) stops everything; --reset starts over""",
          flush=True)


def _raise_keyboard_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make up", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("CREATORPASS_HOME", ROOT / "var")))
    parser.add_argument("--free-ports", action="store_true", help="pick free ports instead of the defaults")
    parser.add_argument("--port", action="append", default=[], metavar="NAME=PORT",
                        help="move one service, e.g. --port gateway=8081 (repeatable)")
    parser.add_argument("--check", action="store_true", help="start, wait until healthy, then stop")
    parser.add_argument("--reset", action="store_true",
                        help="delete the state (devnet chain, keys, ledger, images, logs) and exit")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    if args.reset:
        if home.exists():
            shutil.rmtree(home)
        print(f"state under {home} deleted; the next `make up` starts a fresh devnet")
        return 0
    # Explicit handlers: a shell starting us in the background makes SIGINT ignored by inheritance.
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    ports = Ports.free() if args.free_ports else Ports().with_overrides(args.port)
    busy = ports.busy()
    if busy:
        for name, port in busy:
            print(f"make up: port {port} ({name}) is already in use on 127.0.0.1", file=sys.stderr)
        first = busy[0][0]
        print(f"  stop what holds it (ss -ltnp), or move it: make up UP_ARGS='--port {first}=PORT', "
              "or let every service pick a free port: make up UP_ARGS=--free-ports", file=sys.stderr)
        return 2
    print(f"starting the embedded appliance (state in {home}) …", flush=True)
    try:
        services = up(home, ports)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"make up failed: {exc}; logs in {home / 'logs'}", file=sys.stderr)
        return 1
    if args.check:
        stop_all(services)
        return 0
    try:
        while True:
            for svc in services:
                if svc.proc and svc.proc.poll() is not None:
                    print(f"{svc.name} exited with code {svc.proc.returncode}; stopping everything "
                          f"(its log: {home / 'logs' / (svc.name + '.log')})", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping …", flush=True)
        return 0
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            stop_all(services)
        (home / "run" / "up.json").unlink(missing_ok=True)
        print("stopped.", flush=True)

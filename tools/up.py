"""``make up``: run the appliance on its embedded default as local processes.

Devnet chain (Ogmios v6 + Kupo v2 + control API), the signer (encrypted key file, unix socket), the
indexer and inference (built-in CPPN model, CPU). State lives under ``var/`` (``CREATORPASS_HOME``):
keys, chain, indexer store survive a restart. On first start the signer's keys are created, a random
key-file passphrase is written to ``var/secrets/signer-passphrase`` (mode 0600), and the devnet funds the
custodial address with ADA and $CREATE. Ctrl-C (or SIGTERM) stops everything gracefully.

``python -m tools.up --check`` starts everything, waits until all are healthy, prints the endpoints
and stops: the smoke test of the embedded stack.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
START_TIMEOUT_S = 120.0
INITIAL_CREATE = 1_000_000
INITIAL_LOVELACE = 10_000 * 1_000_000


@dataclass
class Ports:
    ogmios: int = 1337
    kupo: int = 1442
    control: int = 10000
    indexer: int = 50052
    indexer_health: int = 1443
    inference: int = 50053
    inference_health: int = 9103
    signer_health: int = 9101

    @classmethod
    def free(cls) -> Ports:
        names = list(cls.__dataclass_fields__)
        socks = [socket.socket() for _ in names]
        try:
            for s in socks:
                s.bind(("127.0.0.1", 0))
            return cls(**{n: s.getsockname()[1] for n, s in zip(names, socks, strict=True)})
        finally:
            for s in socks:
                s.close()


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def _wait(what: str, ready: object, procs: list[Service], timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for svc in procs:
            if svc.proc and svc.proc.poll() is not None:
                raise RuntimeError(f"{svc.name} exited with code {svc.proc.returncode} while waiting for {what}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def _signer_env(home: Path) -> dict[str, str]:
    secret = home / "secrets" / "signer-passphrase"
    if not secret.exists():
        secret.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return {"SIGNER_DATA_DIR": str(home / "signer"), "SIGNER_PASSPHRASE_FILE": str(secret),
            "SIGNER_LISTEN": f"unix:{home / 'run' / 'signer.sock'}"}


def _signer_identity(env: dict[str, str]) -> dict[str, str]:
    full_env = {**os.environ, **env}
    if not Path(env["SIGNER_DATA_DIR"], "keys.json").exists():
        subprocess.run([PY, "-m", "signer", "keys", "init"], env=full_env, check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([PY, "-m", "signer", "keys", "show"], env=full_env, check=True, capture_output=True)
    identity: dict[str, str] = json.loads(out.stdout)
    return identity


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: dict[str, object] = json.loads(resp.read())
        return result


def plan(home: Path, ports: Ports, identity: dict[str, str], signer_env: dict[str, str]) -> list[Service]:
    common = {"PYTHONUNBUFFERED": "1"}
    devnet = Service("devnet", [
        PY, "-m", "devnet", "--state-dir", str(home / "devnet"), "--block-time", "1",
        "--ogmios-port", str(ports.ogmios), "--kupo-port", str(ports.kupo), "--control-port", str(ports.control),
        "--genesis-fund", f"{identity['custodial_address']}={INITIAL_LOVELACE}",
    ], common)
    signer = Service("signer", [PY, "-m", "signer", "serve"],
                     {**common, **signer_env, "SIGNER_METRICS_LISTEN": f"127.0.0.1:{ports.signer_health}"})
    indexer = Service("indexer", [PY, "-m", "indexer"], {
        **common,
        "INDEXER_OGMIOS_URL": f"ws://127.0.0.1:{ports.ogmios}", "INDEXER_KUPO_URL": f"http://127.0.0.1:{ports.kupo}",
        "INDEXER_LISTEN": f"127.0.0.1:{ports.indexer}", "INDEXER_HEALTH_PORT": str(ports.indexer_health),
        "INDEXER_DB_PATH": str(home / "indexer" / "indexer.sqlite3"),
        "INDEXER_TREASURY_ADDRESS": identity["custodial_address"], "INDEXER_SINK_ADDRESS": identity["sink_address"],
        "INDEXER_POLICY_ID": identity["policy_id"], "INDEXER_ASSET_NAME": identity["asset_name"],
    })
    inference = Service("inference", [PY, "-m", "inference", "serve"], {
        **common, "INFERENCE_LISTEN": f"127.0.0.1:{ports.inference}",
        "INFERENCE_HEALTH_PORT": str(ports.inference_health), "INFERENCE_DATA_DIR": str(home / "inference"),
    })
    return [devnet, signer, indexer, inference]


def _start(svc: Service, home: Path) -> None:
    log_dir = home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / f"{svc.name}.log").open("ab")
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


def up(home: Path, ports: Ports) -> list[Service]:
    """Start every service and wait until each is healthy; the caller stops them."""
    signer_env = _signer_env(home)
    identity = _signer_identity(signer_env)
    services = plan(home, ports, identity, signer_env)
    devnet, signer, indexer, inference = services
    try:
        for svc in (devnet, signer, inference):
            _start(svc, home)
        control = f"http://127.0.0.1:{ports.control}"
        _wait("devnet", lambda: _http_status(f"{control}/devnet/info") == 200, services)
        funded = home / "devnet" / ".create-funded"
        if not funded.exists():
            asset = f"{identity['policy_id']}.{identity['asset_name']}"
            _post(f"{control}/devnet/fund", {"address": identity["custodial_address"], "lovelace": 5_000_000,
                                             "assets": {asset: INITIAL_CREATE}})
            funded.write_text("ok\n")
        _start(indexer, home)
        _wait("signer", lambda: _http_status(f"http://127.0.0.1:{ports.signer_health}/health") == 200, services)
        _wait("indexer", lambda: _http_status(f"http://127.0.0.1:{ports.indexer_health}/health") == 200, services)
        _wait("inference", lambda: _http_status(f"http://127.0.0.1:{ports.inference_health}/health") == 200,
              services)
    except BaseException:
        stop_all(services)
        raise
    print(f"""creatorpass is up (state in {home}, logs in {home / 'logs'})
  devnet    Ogmios ws://127.0.0.1:{ports.ogmios}  Kupo http://127.0.0.1:{ports.kupo}  control http://127.0.0.1:{ports.control}
  signer    {signer_env['SIGNER_LISTEN']}  custodial {identity['custodial_address']}
            $CREATE {identity['policy_id']}.{identity['asset_name']}
  indexer   gRPC 127.0.0.1:{ports.indexer}  health http://127.0.0.1:{ports.indexer_health}/health
  inference gRPC 127.0.0.1:{ports.inference}  health http://127.0.0.1:{ports.inference_health}/health""",
          flush=True)
    return services


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make up", description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("CREATORPASS_HOME", ROOT / "var")))
    parser.add_argument("--free-ports", action="store_true", help="pick free ports instead of the defaults")
    parser.add_argument("--check", action="store_true", help="start, wait until healthy, then stop")
    args = parser.parse_args(argv)
    ports = Ports.free() if args.free_ports else Ports()
    try:
        services = up(args.home.resolve(), ports)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"make up failed: {exc}; see {args.home / 'logs'}", file=sys.stderr)
        return 1
    if args.check:
        stop_all(services)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while True:
            for svc in services:
                if svc.proc and svc.proc.poll() is not None:
                    print(f"{svc.name} exited with code {svc.proc.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("stopping…", flush=True)
        return 0
    finally:
        stop_all(services)


if __name__ == "__main__":
    raise SystemExit(main())

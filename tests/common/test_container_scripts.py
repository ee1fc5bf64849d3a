"""The bundle's container scripts run for real under sh/bash, with stand-in programs on PATH; and what each
container's settings become, loaded by the service's own settings class (no docker engine runs here).
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

# --- the container scripts, run for real -----------------------------------------------------------------


def fake_program(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def run_script(script: str, env: dict[str, str], bin_dir: Path, *args: str,
               shell: str = "sh") -> subprocess.CompletedProcess[str]:
    return subprocess.run([shell, str(ROOT / "docker" / script), *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env})


@pytest.mark.parametrize(("network", "network_id", "address_network"),
                         [("mainnet", "1", "mainnet"), ("preprod", "0", "testnet"), ("preview", "0", "testnet"),
                          ("devnet", "0", "testnet")])
def test_entrypoint_derives_the_network_settings(tmp_path: Path, network: str, network_id: str,
                                                 address_network: str) -> None:
    fake_program(tmp_path, "python", 'echo "args=$*"; env | grep -E "^(SIGNER|INDEXER|GATEWAY)_NETWORK" | sort\n')
    done = run_script("entrypoint.sh", {"SERVICE": "signer", "CREATORPASS_NETWORK": network}, tmp_path, "serve")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:4] == ["args=-m signer serve", f"GATEWAY_NETWORK={network}",
                                           f"INDEXER_NETWORK={address_network}", f"SIGNER_NETWORK_ID={network_id}"]
    fake_program(tmp_path, "python", 'echo "start=${SIGNER_SYSTEM_START:-}"\n')
    done = run_script("entrypoint.sh", {"SERVICE": "signer", "CREATORPASS_NETWORK": network}, tmp_path)
    assert done.stdout.strip() == "start=" + {"mainnet": "", "preprod": "2022-06-20T00:00:00Z",
                                              "preview": "2022-10-25T00:00:00Z",
                                              "devnet": "2026-01-01T00:00:00Z"}[network]


def test_entrypoint_refuses_bad_and_missing_values_naming_the_env_variable(tmp_path: Path) -> None:
    fake_program(tmp_path, "python", "echo started\n")
    cases = [({"CREATORPASS_NETWORK": "testnet"}, "NETWORK must be mainnet, preprod, preview or devnet"),
             ({"CREATORPASS_NETWORK": "mainnet", "SIGNER_NETWORK_ID": "0"},
              "SIGNER_NETWORK_ID=0 disagrees with NETWORK=mainnet"),
             ({"CREATORPASS_REQUIRED": "INDEXER_TREASURY_ADDRESS=TREASURY_ADDRESS", "INDEXER_TREASURY_ADDRESS": ""},
              "INDEXER_TREASURY_ADDRESS is empty: set TREASURY_ADDRESS in .env"),
             ({"CREATORPASS_REQUIRED": "bad;name=X"}, "CREATORPASS_REQUIRED: 'bad;name=X' is not CONTAINER_VAR=")]
    for env, message in cases:
        done = run_script("entrypoint.sh", {"SERVICE": "indexer", **env}, tmp_path)
        assert done.returncode == 2 and f"configuration error: {message}" in done.stderr, (env, done)
        assert "started" not in done.stdout
    done = run_script("entrypoint.sh", {"SERVICE": "indexer", "CREATORPASS_REQUIRED": "INDEXER_POLICY_ID=X",
                                        "INDEXER_POLICY_ID": "ab"}, tmp_path)
    assert done.returncode == 0 and done.stdout == "started\n", done.stderr


def test_kupo_start_indexes_only_our_policy_and_addresses(tmp_path: Path) -> None:
    fake_program(tmp_path, "kupo", 'for a in "$@"; do echo "$a"; done\n')
    env = {"KUPO_BIN": str(tmp_path / "kupo"), "KUPO_POLICY_ID": "ab" * 28, "KUPO_TREASURY_ADDRESS": "addr_test1xyz",
           "KUPO_SINCE": "100.aa"}
    for missing, message in (("KUPO_POLICY_ID", "CREATE_POLICY_ID is empty"),
                             ("KUPO_TREASURY_ADDRESS", "TREASURY_ADDRESS is empty"),
                             ("KUPO_SINCE", "CHAIN_START_POINT is empty")):
        done = run_script("kupo-start.sh", {**env, missing: ""}, tmp_path)
        assert done.returncode == 2 and message in done.stderr, done
    done = run_script("kupo-start.sh", {**env, "KUPO_SINCE": "tip"}, tmp_path)
    assert done.returncode == 2 and "cannot start at 'tip'" in done.stderr
    done = run_script("kupo-start.sh", {**env, "KUPO_SINK_ADDRESS": "addr_test1sink"}, tmp_path)
    args = done.stdout.split()
    assert done.returncode == 0, done.stderr
    matches = [args[i + 1] for i, a in enumerate(args) if a == "--match"]
    assert matches == ["ab" * 28 + ".*", "addr_test1xyz", "addr_test1sink"]
    assert args[args.index("--since") + 1] == "100.aa" and "--ogmios-host" in args and "--prune-utxo" in args


@pytest.mark.parametrize(("wget", "code", "says"), [
    ('echo \'{"connectionStatus":"connected","networkSynchronization":0.5}\'\n', 0, "connected to cardano-node"),
    ("echo 'wget: server returned error: HTTP/1.1 500 Internal Server Error' >&2; exit 1\n", 1, "waiting for node"),
    ("echo 'wget: can\\'t connect to remote host (127.0.0.1): Connection refused' >&2; exit 1\n", 1,
     "Ogmios does not answer"),
])
def test_ogmios_health_says_waiting_for_node(tmp_path: Path, wget: str, code: int, says: str) -> None:
    fake_program(tmp_path, "wget", wget)
    done = run_script("ogmios-health.sh", {}, tmp_path)
    assert done.returncode == code and says in done.stdout, done


def test_node_health_reads_the_magic_of_each_pinned_network(tmp_path: Path) -> None:
    # The script reads the genesis at its container path; run its own parsing lines on each pinned genesis.
    script = (ROOT / "docker" / "node-health.sh").read_text()
    assert "cardano-cli query tip" in script
    parse = [line for line in script.splitlines() if line.startswith(("genesis=", "magic="))]
    assert len(parse) == 3, parse
    for network, magic in (("mainnet", "764824073"), ("preprod", "1"), ("preview", "2")):
        genesis = ROOT / f"cardano-node-config/{network}/genesis/shelley.json"
        code = "\n".join(parse).replace("/config/genesis/shelley.json", str(genesis)) + '\necho "$magic"'
        done = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=30)
        assert done.stdout.strip() == magic, (network, done)
    assert subprocess.run(["bash", "-n", str(ROOT / "docker" / "node-health.sh")], timeout=30).returncode == 0


def test_entrypoint_on_the_devnet_points_the_gateway_at_the_sandbox(tmp_path: Path) -> None:
    fake_program(tmp_path, "python", 'env | grep -E "^(GATEWAY_STRIPE|GATEWAY_DEVNET|DEVNET_SYSTEM)" | sort\n')
    done = run_script("entrypoint.sh", {"SERVICE": "gateway", "CREATORPASS_NETWORK": "devnet"}, tmp_path)
    assert done.stdout.split() == ["DEVNET_SYSTEM_START=2026-01-01T00:00:00Z",
                                   "GATEWAY_DEVNET_CONTROL_URL=http://devnet:10000",
                                   "GATEWAY_STRIPE_API_BASE=http://stripe-sandbox:12111",
                                   "GATEWAY_STRIPE_JS_URL=http://127.0.0.1:12111/v3/"], done
    fake_program(tmp_path, "python", "env | grep -c GATEWAY_STRIPE_API_BASE || true\n")
    done = run_script("entrypoint.sh", {"SERVICE": "gateway", "CREATORPASS_NETWORK": "preprod"}, tmp_path)
    assert done.stdout.strip() == "0", done  # real Stripe everywhere else


def test_entrypoint_gives_the_gateway_a_public_url_on_the_devnet_only(tmp_path: Path) -> None:
    fake_program(tmp_path, "python", 'echo "url=$GATEWAY_PUBLIC_URL"\n')
    required = {"SERVICE": "gateway", "CREATORPASS_REQUIRED": "GATEWAY_PUBLIC_URL=GATEWAY_PUBLIC_URL"}
    done = run_script("entrypoint.sh", {**required, "CREATORPASS_NETWORK": "devnet"}, tmp_path)
    assert done.stdout.strip() == "url=http://127.0.0.1:8080", done
    done = run_script("entrypoint.sh", {**required, "CREATORPASS_NETWORK": "devnet",
                                        "GATEWAY_PUBLIC_URL": "http://laptop.lan:8080"}, tmp_path)
    assert done.stdout.strip() == "url=http://laptop.lan:8080", done
    done = run_script("entrypoint.sh", {**required, "CREATORPASS_NETWORK": "mainnet", "GATEWAY_PUBLIC_URL": ""},
                      tmp_path)
    assert done.returncode == 2 and "GATEWAY_PUBLIC_URL is empty: set GATEWAY_PUBLIC_URL in .env" in done.stderr


class _FakeControl(http.server.BaseHTTPRequestHandler):
    bodies: list[Any] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: Any) -> None:
        pass


def test_devnet_fund_mints_to_the_treasury_once(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeControl)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"FUND_CONTROL_URL": f"http://127.0.0.1:{server.server_address[1]}", "FUND_ADDRESS": "addr_test1xyz",
           "FUND_ASSET": "ab" * 28 + ".435245415445", "FUND_MARKER": str(tmp_path / "funded")}
    script = [sys.executable, str(ROOT / "docker" / "devnet-fund.py")]
    try:
        for _ in range(2):
            done = subprocess.run(script, env=env, capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
        assert _FakeControl.bodies == [("/devnet/fund", {"address": "addr_test1xyz", "lovelace": 10_000_000_000,
                                                         "assets": {"ab" * 28 + ".435245415445": 1_000_000}})]
        assert "already funded" in done.stdout
        done = subprocess.run(script, env={**env, "FUND_ASSET": ".435245415445"}, capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 2 and "CREATE_POLICY_ID must be set" in done.stderr
    finally:
        server.shutdown()


# --- what each container's settings become, loaded by the service's own settings class -------------------------

DEVNET_WALLET_ADDRESS = ("addr_test1qrekevnv0cf8umqq83e5cvhu8m96fwacrf7zarg7r4yaldz6jkszdh89tvap7rkwtd0ddedxru5806t7wa7"
                         "n3fa0hk6qealg3d")  # a valid testnet base address
FILLED_ENV = {"CREATE_POLICY_ID": "ab" * 28, "TREASURY_ADDRESS": DEVNET_WALLET_ADDRESS,
              "CHAIN_START_POINT": "100." + "cd" * 32, "GATEWAY_PUBLIC_URL": "https://studio.example.com"}


def _container_env(service: str, network: str, tmp_path: Path) -> dict[str, str]:
    """The environment the service's process sees: compose's, then docker/entrypoint.sh's derivations."""
    from compose_model import Bundle, environment, interpolate

    bundle = Bundle.load(ROOT)
    values = {**bundle.env_example, **FILLED_ENV, "NETWORK": network}
    svc = interpolate(bundle.raw["docker-compose.yml"], values, set(), set())["services"][service]
    env = environment(svc)
    for var, path in list(env.items()):  # a file secret, as compose mounts it, with a dummy secret
        if var.endswith("_FILE") and path.startswith("/run/secrets/"):
            secret = tmp_path / path.rsplit("/", 1)[1]
            secret.write_text("sk_test_" + "s" * 40 if "STRIPE_SECRET" in var else "x" * 48)
            env[var] = str(secret)
    fake_program(tmp_path / "bin", "python", "env\n")
    image_service = svc.get("build", {}).get("args", {}).get("SERVICE", service)
    done = run_script("entrypoint.sh", {"SERVICE": image_service, **env}, tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@pytest.mark.parametrize("network", ["preprod", "devnet"])
@pytest.mark.parametrize(("service", "module", "cls"), [
    ("gateway", "gateway.settings", "GatewaySettings"), ("signer", "signer.settings", "SignerSettings"),
    ("signer-init", "signer.settings", "SignerSettings"), ("indexer", "indexer.config", "IndexerSettings"),
    ("inference", "inference.settings", "InferenceSettings"),
    ("inference-cpu", "inference.settings", "InferenceSettings")])
def test_every_container_setting_is_a_real_setting_with_a_valid_value(
        tmp_path: Path, network: str, service: str, module: str, cls: str) -> None:
    import importlib

    from common.settings import describe_settings, load_settings

    settings_cls = getattr(importlib.import_module(module), cls)
    env = _container_env(service, network, tmp_path)
    known = {row[0] for row in describe_settings(settings_cls)}
    ours = {k for k in env if k.startswith(settings_cls.env_prefix)}
    assert ours - known == set(), f"{service}: not settings of {cls}"
    load_settings(settings_cls, {k: v for k, v in env.items() if k in ours})  # raises ConfigError on a bad value


@pytest.mark.parametrize(("service", "argv"), [("devnet", ["-m", "devnet", "--help"]),
                                               ("stripe-sandbox", ["-m", "devnet.stripe", "--help"])])
def test_devnet_profile_variables_are_the_tools_own(tmp_path: Path, service: str, argv: list[str]) -> None:
    env = _container_env(service, "devnet", tmp_path)
    usage = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60).stdout
    prefix = "DEVNET_" if service == "devnet" else "STRIPE_SANDBOX_"
    ours = {k.removesuffix("_FILE") for k in env if k.startswith(prefix)}
    readme = (ROOT / "devnet" / "stripe" / "README.md").read_text()
    assert {k for k in ours if k not in usage and k not in readme} == set(), service

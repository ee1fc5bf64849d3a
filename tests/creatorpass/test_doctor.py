"""``creatorpass doctor`` against real processes: a devnet, an indexer, a signer key file.

All green on the devnet; then each failure an operator meets (wrong network magic, a missing or stale
node socket, an indexer still catching up, no keys) is a clear message with a fix and exit code 1.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.devnet_fixture import DevnetProcess

ROOT = Path(__file__).resolve().parents[2]


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INDEXER_", "SIGNER_", "CARDANO_", "NETWORK"))}
    return subprocess.run([sys.executable, "-m", "creatorpass", "doctor", *args], cwd=ROOT, text=True,
                          capture_output=True, env={**clean, **(env or {})}, timeout=60)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("signer")
    secret = home / "passphrase"
    secret.write_text("correct horse battery staple")
    env = {**os.environ, "SIGNER_DATA_DIR": str(home), "SIGNER_PASSPHRASE_FILE": str(secret),
           "SIGNER_KDF_MEMORY_KIB": "8192"}
    subprocess.run([sys.executable, "-m", "signer", "keys", "init"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=60)
    return home / "keys.json"


@pytest.fixture
def stack(devnet: DevnetProcess, indexer_factory, key_file: Path) -> list[str]:
    devnet.blocks(2)
    indexer = indexer_factory(devnet=devnet)
    indexer.wait_health({200}, timeout_s=60)
    return ["--ogmios-url", devnet.ogmios_url, "--kupo-url", devnet.kupo_url,
            "--indexer-health-url", indexer.health_url, "--signer-key-file", str(key_file)]


def test_all_green_on_the_devnet(stack: list[str]) -> None:
    result = doctor("--network", "devnet", *stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
    checks = {c["name"]: c for c in json.loads(doctor("--network", "devnet", "--json", *stack).stdout)}
    assert checks["network magic"]["ok"] and checks["kupo"]["ok"] and checks["indexer"]["ok"]
    assert checks["signer keys"]["ok"] and checks["node sync"]["ok"]
    assert checks["node socket"]["ok"] is None  # not configured: Ogmios is used as given


def test_wrong_network_magic_names_both_and_the_fix(stack: list[str]) -> None:
    result = doctor("--network", "preprod", *stack)
    assert result.returncode == 1
    assert "the node is on magic 42 (devnet); NETWORK=preprod expects 1" in result.stdout
    assert "fix: set NETWORK=devnet" in result.stdout


def test_missing_node_socket(stack: list[str], tmp_path: Path) -> None:
    result = doctor("--network", "devnet", "--node-socket", str(tmp_path / "node.socket"), *stack)
    assert result.returncode == 1
    assert f"[FAIL] node socket: {tmp_path / 'node.socket'} does not exist" in result.stdout
    assert "CARDANO_NODE_SOCKET_PATH" in result.stdout


def test_stale_node_socket(stack: list[str], tmp_path: Path) -> None:
    path = tmp_path / "node.socket"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.close()  # the file stays, nobody listens: what a crashed node leaves behind
    result = doctor("--network", "devnet", "--node-socket", str(path), *stack)
    assert result.returncode == 1 and "a stale socket: is the node running?" in result.stdout


class _CatchingUpKupo(http.server.BaseHTTPRequestHandler):
    """Kupo's /health while it is still indexing (the devnet's own Kupo is always synced)."""

    def do_GET(self) -> None:
        body = json.dumps({"connection_status": "connected", "most_recent_checkpoint": 10,
                           "most_recent_node_tip": 90_000, "version": "v2.11.0"}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def catching_up_kupo() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CatchingUpKupo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_unsynced_indexer_and_kupo(devnet: DevnetProcess, indexer_factory, key_file: Path,
                                   catching_up_kupo: str) -> None:
    devnet.blocks(1)
    indexer = indexer_factory(devnet=devnet, kupo_url=catching_up_kupo)
    indexer.wait_health({202}, timeout_s=60)  # a real indexer, honestly reporting that Kupo is behind
    result = doctor("--network", "devnet", "--ogmios-url", devnet.ogmios_url, "--kupo-url", catching_up_kupo,
                    "--indexer-health-url", indexer.health_url, "--signer-key-file", str(key_file))
    assert result.returncode == 1
    assert "[FAIL] indexer: catching up" in result.stdout
    assert "[FAIL] kupo: Kupo is catching up (checkpoint 10, node tip 90000)" in result.stdout


def test_nothing_running_and_no_keys(tmp_path: Path) -> None:
    result = doctor("--network", "devnet", "--ogmios-url", "ws://127.0.0.1:9", "--kupo-url", "http://127.0.0.1:9",
                    "--indexer-health-url", "http://127.0.0.1:9/health",
                    "--signer-key-file", str(tmp_path / "keys.json"))
    assert result.returncode == 1
    for line in ("[FAIL] ogmios: ws://127.0.0.1:9", "[FAIL] kupo: http://127.0.0.1:9 is unreachable",
                 "[FAIL] indexer:", f"[FAIL] signer keys: no key file at {tmp_path / 'keys.json'}"):
        assert line.replace("ws://", "http://") in result.stdout or line in result.stdout, result.stdout
    assert "4 problem(s) found" in result.stdout  # ogmios unreachable: no magic or sync check

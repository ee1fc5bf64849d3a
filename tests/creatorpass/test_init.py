"""``creatorpass init``: .env and secrets/ for the bundle, owned by the services that read them, idempotent."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def init(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "creatorpass", "init", "--dir", str(checkout), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def checkout(tmp_path: Path) -> Path:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    return tmp_path


def test_preprod_creates_env_and_secrets_owned_by_their_readers(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    key = tmp_path / "sk.txt"
    key.write_text("sk_live_example\n")
    result = init(root, "--network", "preprod", "--stripe-secret-key-file", str(key))
    assert result.returncode == 0, result.stderr
    assert "NETWORK=preprod" in (root / ".env").read_text().splitlines()
    assert stat.S_IMODE((root / "secrets").stat().st_mode) == 0o700
    owners = {"signer-passphrase": 10001, "gateway-jwt-secret": 10003, "gateway-image-url-secret": 10003,
              "stripe-secret-key": 10003}
    for name, uid in owners.items():
        st = (root / "secrets" / name).stat()
        assert stat.S_IMODE(st.st_mode) == 0o400, name
        if os.geteuid() == 0:
            assert st.st_uid == uid, name
    assert (root / "secrets" / "stripe-secret-key").read_text() == "sk_live_example"
    assert not (root / "secrets" / "stripe-webhook-secret").exists()  # never invented for a real network
    assert "put your Stripe stripe webhook secret in" in result.stdout
    assert "signer-init" in result.stdout


def test_a_second_run_keeps_everything(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    assert init(root, "--network", "devnet").returncode == 0
    before = {p.name: p.read_bytes() for p in (root / "secrets").iterdir()}
    assert set(before) == {"signer-passphrase", "gateway-jwt-secret", "gateway-image-url-secret",
                           "stripe-secret-key", "stripe-webhook-secret"}
    assert before["stripe-secret-key"].startswith(b"sk_test_")
    env = (root / ".env").read_text()
    assert "COMPOSE_PROFILES=devnet" in env and "CHAIN_START_POINT=origin" in env
    again = init(root, "--network", "devnet")
    assert again.returncode == 0 and "created" not in again.stdout
    assert {p.name: p.read_bytes() for p in (root / "secrets").iterdir()} == before


def test_mtls_material_and_a_network_mismatch_warning(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    assert init(root, "--network", "preview", "--mtls").returncode == 0
    assert {"ca.pem", "server.pem", "client.pem"} <= {p.name for p in (root / "secrets" / "mtls").iterdir()}
    other = init(root, "--network", "mainnet")
    assert "says NETWORK=preview, not mainnet" in other.stdout


def test_an_unknown_network_is_refused(tmp_path: Path) -> None:
    result = init(checkout(tmp_path), "--network", "testnet")
    assert result.returncode == 2 and "invalid choice" in result.stderr

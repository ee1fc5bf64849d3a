"""``creatorpass token``: show the policy; mint through the signer's ceremony onto a real devnet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.signer.helpers import SignerProcess
from tests.support.devnet_fixture import DevnetProcess

ROOT = Path(__file__).resolve().parents[2]
QUANTITY = 750


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "creatorpass", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def signer_env(tmp_path: Path, devnet: DevnetProcess) -> dict[str, str]:
    info = devnet.info()
    (tmp_path / "run").mkdir(mode=0o750)
    secret = tmp_path / "passphrase"
    secret.write_text("a passphrase for the ceremony test")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNER_")}
    env.update({"SIGNER_DATA_DIR": str(tmp_path / "signer"), "SIGNER_PASSPHRASE_FILE": str(secret),
                "SIGNER_KDF_MEMORY_KIB": "8192", "SIGNER_LISTEN": f"unix:{tmp_path / 'run' / 'signer.sock'}",
                "SIGNER_SYSTEM_START": info["system_start"], "SIGNER_SLOT_LENGTH_S": str(info["slot_length_s"]),
                "SIGNER_FSYNC": "false", "PYTHONPATH": str(ROOT)})
    subprocess.run([sys.executable, "-m", "signer", "keys", "init"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=60)
    return env


@pytest.fixture
def ceremony(signer_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    proc = SignerProcess(signer_env, tmp_path, ("--mint-ceremony", str(QUANTITY)))
    proc.wait_ready()
    yield tmp_path / "run" / "ceremony.sock"
    proc.stop()


def _balance(devnet: DevnetProcess, address: str, policy: str, name: str) -> int:
    with urllib.request.urlopen(f"{devnet.kupo_url}/matches/{address}?unspent", timeout=10) as resp:
        found: list[dict[str, Any]] = json.loads(resp.read())
    return sum(m["value"].get("assets", {}).get(f"{policy}.{name}", 0) for m in found)


def test_show_prints_the_policy_and_env_lines(signer_env: dict[str, str]) -> None:
    result = cli("token", "show", env=signer_env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.split("\n\n")[0])
    assert len(shown["policy_id"]) == 56 and shown["asset_name"] == "435245415445"
    assert f"CREATE_POLICY_ID={shown['policy_id']}" in result.stdout
    assert f"TREASURY_ADDRESS={shown['custodial_address']}" in result.stdout


def test_mint_ceremony_lands_on_the_devnet_once(devnet: DevnetProcess, signer_env: dict[str, str],
                                                ceremony: Path) -> None:
    identity = json.loads(cli("token", "show", env=signer_env).stdout.split("\n\n")[0])
    devnet.fund(identity["custodial_address"], 20_000_000)
    devnet.blocks()
    args = ("token", "mint", "--quantity", str(QUANTITY), "--ogmios-url", devnet.ogmios_url,
            "--ceremony-socket", str(ceremony), "--note", "test supply")
    result = cli(*args, env=signer_env)
    assert result.returncode == 0, result.stderr
    minted = json.loads(result.stdout)
    devnet.blocks()
    assert _balance(devnet, identity["custodial_address"], identity["policy_id"], identity["asset_name"]) == QUANTITY
    assert minted["quantity"] == QUANTITY and len(minted["tx_id"]) == 64
    again = cli(*args, env=signer_env)  # a ceremony signs one mint: another transaction is refused
    assert again.returncode == 1 and "the signer refused" in again.stderr and "CEREMONY_USED" in again.stderr


def test_a_quantity_other_than_the_operators_is_refused(devnet: DevnetProcess, signer_env: dict[str, str],
                                                        ceremony: Path) -> None:
    identity = json.loads(cli("token", "show", env=signer_env).stdout.split("\n\n")[0])
    devnet.fund(identity["custodial_address"], 20_000_000)
    devnet.blocks()
    result = cli("token", "mint", "--quantity", str(QUANTITY + 1), "--ogmios-url", devnet.ogmios_url,
                 "--ceremony-socket", str(ceremony), env=signer_env)
    assert result.returncode == 1 and "CEREMONY_QUANTITY_MISMATCH" in result.stderr


def test_mint_without_funds_says_what_to_do(devnet: DevnetProcess, signer_env: dict[str, str],
                                            ceremony: Path) -> None:
    result = cli("token", "mint", "--quantity", str(QUANTITY), "--ogmios-url", devnet.ogmios_url,
                 "--ceremony-socket", str(ceremony), env=signer_env)
    assert result.returncode == 1 and "has no UTxO: send it some ADA first" in result.stderr

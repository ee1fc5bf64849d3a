"""``python -m indexer``: settings listing, configuration errors, the health-check subcommand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.indexer.test_ogmios import free_port

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    return subprocess.run([sys.executable, "-m", "indexer", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_settings_lists_every_variable_with_its_default() -> None:
    out = run("settings").stdout
    for var in ("INDEXER_OGMIOS_URL", "INDEXER_KUPO_URL", "INDEXER_START_POINT", "INDEXER_PIPELINE_DEPTH"):
        assert var in out


def test_bad_configuration_exits_2_naming_the_variable() -> None:
    done = run("health-check", INDEXER_START_POINT="yesterday")
    assert done.returncode == 2 and "INDEXER_START_POINT" in done.stderr
    done = run("health-check", INDEXER_TREASURY_ADDRESS="addr1qnotanaddress")
    assert done.returncode == 2 and "INDEXER_TREASURY_ADDRESS" in done.stderr
    done = run("health-check", INDEXER_PIPELINE_DEPTH="lots")
    assert done.returncode == 2 and "INDEXER_PIPELINE_DEPTH" in done.stderr


def test_health_check_fails_when_nothing_answers() -> None:
    done = run("health-check", INDEXER_HEALTH_PORT=str(free_port()))
    assert done.returncode == 1 and "cannot reach" in done.stderr

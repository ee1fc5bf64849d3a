"""``make up``: the embedded stack starts, becomes healthy, stops, and restarts on its own state."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _up_check(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.up", "--home", str(home), "--free-ports", "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_embedded_stack_comes_up_healthy_and_keeps_its_state(tmp_path):
    first = _up_check(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "creatorpass is up" in first.stdout
    passphrase = tmp_path / "secrets" / "signer-passphrase"
    assert oct(passphrase.stat().st_mode & 0o777) == "0o600"
    keys = (tmp_path / "signer" / "keys.json").read_bytes()
    assert passphrase.read_text() not in keys.decode(errors="replace")

    second = _up_check(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (tmp_path / "signer" / "keys.json").read_bytes() == keys  # same custodial keys after a restart
    custodial = [line for line in first.stdout.splitlines() if "custodial" in line]
    assert custodial and custodial == [line for line in second.stdout.splitlines() if "custodial" in line]
    for log in (tmp_path / "logs").glob("*.log"):
        for line in log.read_text().splitlines():
            if line.startswith("{"):
                assert json.loads(line)["level"] != "error", f"{log.name}: {line}"

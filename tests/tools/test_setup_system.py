"""tools/setup-system.sh: quiet and idempotent when everything is present."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "setup-system.sh"


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian-family system")
def test_nothing_to_do_is_silent() -> None:
    # bash is always installed on a machine that can run this script.
    result = subprocess.run(["bash", str(SCRIPT), "bash"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

"""SoftHSM2 for tests: one temporary token directory per test session, one fresh token per test.

PKCS#11 libraries read their configuration and list their tokens once per process (python-pkcs11 keeps
the library loaded), so the session fixture sets ``SOFTHSM2_CONF`` and creates the session's token
before anything loads the module; each test then gets its own key-label prefix in that token
(:meth:`SoftHsm.new_keyspace`). Subprocesses inherit ``SOFTHSM2_CONF`` from ``os.environ``.
SoftHSM2 is installed by ``tools/setup-system.sh``; without it the tests that need it are skipped.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE_CANDIDATES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/local/lib/softhsm/libsofthsm2.so"),
)
_counter = itertools.count(1)


@dataclass(frozen=True)
class Token:
    label: str
    pin: str
    pin_file: Path


@dataclass(frozen=True)
class SoftHsm:
    conf: Path
    module: Path
    workdir: Path
    token: Token

    def new_keyspace(self) -> str:
        """A key-label prefix no other test in this session uses."""
        return f"k{next(_counter)}"


def _init_token(conf: Path, workdir: Path, label: str) -> Token:
    pin = f"pin-{label}-0000"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "so-" + pin],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)}, timeout=30,
    )
    pin_file = workdir / f"{label}.pin"
    pin_file.write_text(pin + "\n")
    return Token(label, pin, pin_file)


def find_module() -> Path | None:
    return next((p for p in MODULE_CANDIDATES if p.exists()), None)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    module = find_module()
    if module is None or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed; run tools/setup-system.sh (as root) to install it")
    workdir = tmp_path_factory.mktemp("softhsm")
    (workdir / "tokens").mkdir()
    conf = workdir / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {workdir / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    token = _init_token(conf, workdir, f"creatorpass-test-{os.getpid()}")
    yield SoftHsm(conf, module, workdir, token)
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous

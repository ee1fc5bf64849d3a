"""Browser end-to-end tests: Debian's Chromium, driven by Playwright, against ``make up``'s stack.

The appliance is started exactly as a person starts it (``python -m creatorpass up``, on free ports, in
a temporary home), once for the module; each test gets a fresh browser context. Screenshots land in
``var/e2e/`` (ignored by git). Every console error fails the test that caused it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "var" / "e2e"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
UP_TIMEOUT_S = 180.0


@dataclass
class Appliance:
    url: str
    email: str
    password: str
    control_url: str
    home: Path
    output: str


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    home = tmp_path_factory.mktemp("appliance")
    log = (home / "up.out").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "creatorpass", "up", "--free-ports", "--home", str(home)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + UP_TIMEOUT_S
    text = ""
    while time.monotonic() < deadline:
        log.seek(0)
        text = log.read()
        if "Ctrl-C (or SIGTERM) stops everything" in text or proc.poll() is not None:
            break
        time.sleep(0.2)
    match = re.search(r"open (http://127\.0\.0\.1:\d+)/", text)
    account = re.search(r"demo card account\s+(\S+) / (\S+)", text)
    control = re.search(r"control (http://127\.0\.0\.1:\d+)", text)
    if proc.poll() is not None or not (match and account and control):
        _stop(proc, home)
        pytest.fail(f"make up did not come up:\n{text[-4000:]}")
    yield Appliance(match.group(1), account.group(1), account.group(2), control.group(1), home, text)
    _stop(proc, home)
    log.close()


def _stop(proc: subprocess.Popen[bytes], home: Path) -> None:
    """Ctrl-C, as a person stops it; if that hangs, kill every service it recorded, then it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        pids = json.loads((home / "run" / "up.json").read_text())["services"].values()
    except (OSError, ValueError, KeyError):
        pids = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    proc.kill()
    raise AssertionError("make up did not stop within 60 s of Ctrl-C")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make system` (tools/setup-system.sh installs it)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(30_000)
    pg.console_errors = errors
    yield pg
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()

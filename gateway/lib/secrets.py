"""Secrets for the gateway: from ``GATEWAY_<NAME>_FILE``, or (development only) generated once.

In the embedded default a missing HMAC key is generated into ``state_dir/secrets/<name>`` (0600) and
reused on the next start, so ``make up`` needs no set-up and tokens survive a restart. With
``GATEWAY_REQUIRE_SECRETS=true`` (production) a missing secret stops the start with a clear message.
Secret values are never logged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from common.logging import get_logger
from common.settings import ConfigError
from gateway.settings import GatewaySettings

__all__ = ["hmac_secret"]

log = get_logger("gateway.secrets")


def hmac_secret(settings: GatewaySettings, name: str) -> bytes:
    """The value of secret setting ``name`` (e.g. ``jwt_secret``), generated in dev when missing."""
    value = getattr(settings, name)
    if value:
        return str(value).encode()
    var = f"GATEWAY_{name.upper()}_FILE"
    if settings.require_secrets:
        raise ConfigError(f"{var}: required secret is missing (GATEWAY_REQUIRE_SECRETS is on)")
    path = settings.state_dir / "secrets" / name
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    generated = secrets.token_hex(32).encode()
    _write_private(path, generated)
    log.warning("gateway_dev_secret_generated", secret=name, path=str(path), hint=f"set {var} in production")
    return generated


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)

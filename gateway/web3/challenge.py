"""The wallet sign-in challenge: a readable message a wallet shows before ``signData``.

Like Sign-In with Ethereum (EIP-4361) it names our domain, the address, the network, a single-use
nonce and the expiry, one per line, so the artist sees what they sign. ``payload`` (hex of the UTF-8
text) is what the page hands to ``signData(address, payload)`` as is. The server keeps the exact text;
a signature is checked against the stored text, never against a reparsed one.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Challenge", "make_challenge", "nonce_of"]

NONCE_BYTES = 16
_NONCE_RE = re.compile(r"^Nonce: ([0-9a-f]{32})$", re.MULTILINE)


@dataclass(frozen=True)
class Challenge:
    nonce: str
    address: str
    text: str
    expires_at: datetime

    @property
    def payload_hex(self) -> str:
        return self.text.encode("utf-8").hex()

    @property
    def expires_at_iso(self) -> str:
        return _iso(self.expires_at)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_challenge(*, domain: str, address: str, network_id: int, ttl_s: int,
                   now: datetime | None = None) -> Challenge:
    """A fresh challenge for ``address`` (bech32) valid ``ttl_s`` seconds from ``now``."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = issued + timedelta(seconds=ttl_s)
    nonce = secrets.token_hex(NONCE_BYTES)
    text = "\n".join([
        f"{domain} wants you to sign in with your Cardano wallet:",
        address,
        "",
        "Sign in to creatorpass. This costs nothing and sends no transaction.",
        "",
        f"URI: https://{domain}",
        f"Network ID: {network_id}",
        f"Nonce: {nonce}",
        f"Issued At: {_iso(issued)}",
        f"Expiration Time: {_iso(expires)}",
    ])
    return Challenge(nonce=nonce, address=address, text=text, expires_at=expires)


def nonce_of(message: bytes) -> str | None:
    """The nonce named in a signed challenge text, or None when it is not one of ours."""
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        return None
    match = _NONCE_RE.search(text)
    return match.group(1) if match else None

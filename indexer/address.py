"""Shelley address validation (bech32 from ``common.bech32``).

Only payment addresses are accepted (base, pointer, enterprise); stake and Byron addresses are refused,
and the human-readable prefix and the header's network id must both match the configured network.
"""

from __future__ import annotations

from common import bech32

__all__ = ["MAX_ADDRESS_CHARS", "bech32_decode", "validate_address"]

MAX_ADDRESS_CHARS = 200
_HRP = {"mainnet": "addr", "testnet": "addr_test"}
_NETWORK_ID = {"mainnet": 1, "testnet": 0}
# header type nibble -> exact byte length (None: variable, pointer addresses)
_PAYMENT_TYPES: dict[int, int | None] = {0: 57, 1: 57, 2: 57, 3: 57, 4: None, 5: None, 6: 29, 7: 29}


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Return (hrp, payload bytes) of a bech32 address; raise ValueError with a reason."""
    if not isinstance(text, str) or not text:
        raise ValueError("address is empty")
    return bech32.decode(text, max_chars=MAX_ADDRESS_CHARS)


def validate_address(address: str, network: str) -> bytes:
    """Check ``address`` is a Shelley payment address of ``network``; return its raw bytes."""
    hrp, raw = bech32_decode(address)
    expected = _HRP[network]
    if hrp != expected:
        raise ValueError(f"address prefix must be {expected!r} on {network}, got {hrp!r}")
    if not raw:
        raise ValueError("address has no payload")
    kind, net_id = raw[0] >> 4, raw[0] & 0x0F
    if kind not in _PAYMENT_TYPES:
        raise ValueError("not a payment address (stake or unknown address type)")
    if net_id != _NETWORK_ID[network]:
        raise ValueError(f"address network id {net_id} does not match {network}")
    length = _PAYMENT_TYPES[kind]
    if (length is not None and len(raw) != length) or (length is None and not 32 <= len(raw) <= 64):
        raise ValueError(f"address payload has the wrong length ({len(raw)} bytes)")
    return raw

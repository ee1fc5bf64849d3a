"""Shelley payment addresses as the wallet path meets them: bech32 (``addr_test1…``) or CIP-30's raw hex.

Only payment addresses are accepted (base, pointer, enterprise); stake and Byron addresses are refused,
and the header's network id must match the configured network. The payment credential is what a
wallet's ``signData`` and ``signTx`` witnesses prove control of.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from common import bech32
from gateway.web3.errors import InvalidAddress

__all__ = ["MAX_ADDRESS_CHARS", "WalletAddress", "key_hash", "network_id_of", "parse_address"]

MAX_ADDRESS_CHARS = 200
# header type nibble -> exact byte length (None: pointer addresses, variable)
_PAYMENT_TYPES: dict[int, int | None] = {0: 57, 1: 57, 2: 57, 3: 57, 4: None, 5: None, 6: 29, 7: 29}


def network_id_of(network: str) -> int:
    """The address network id: 1 on mainnet, 0 on every test network (devnet, preview, preprod)."""
    return 1 if network == "mainnet" else 0


def key_hash(vkey: bytes) -> bytes:
    """blake2b-224 of a verification key: the key's credential."""
    return hashlib.blake2b(vkey, digest_size=28).digest()


@dataclass(frozen=True)
class WalletAddress:
    raw: bytes

    @property
    def kind(self) -> int:
        return self.raw[0] >> 4

    @property
    def network_id(self) -> int:
        return self.raw[0] & 0x0F

    @property
    def payment_part(self) -> bytes:
        return self.raw[1:29]

    @property
    def payment_is_script(self) -> bool:
        return bool(self.kind & 1)

    @property
    def payment_key_hash(self) -> bytes | None:
        """The payment key hash, or None when a script guards the address."""
        return None if self.payment_is_script else self.payment_part

    @property
    def bech32(self) -> str:
        return bech32.encode("addr" if self.network_id == 1 else "addr_test", self.raw)

    def __str__(self) -> str:
        return self.bech32


def _check_raw(raw: bytes, network_id: int) -> WalletAddress:
    if not raw:
        raise InvalidAddress("address has no payload")
    kind, net = raw[0] >> 4, raw[0] & 0x0F
    if kind not in _PAYMENT_TYPES:
        raise InvalidAddress("not a payment address (a stake, Byron or unknown address type)")
    if net != network_id:
        raise InvalidAddress(f"address network id {net} does not match this network ({network_id})")
    length = _PAYMENT_TYPES[kind]
    if (length is not None and len(raw) != length) or (length is None and not 32 <= len(raw) <= 64):
        raise InvalidAddress(f"address payload has the wrong length ({len(raw)} bytes)")
    return WalletAddress(raw)


def parse_address(text: str, network_id: int) -> WalletAddress:
    """Parse a bech32 or raw-hex (CIP-30) payment address of ``network_id``; InvalidAddress says why not."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidAddress("address is empty")
    text = text.strip()
    if len(text) > MAX_ADDRESS_CHARS:
        raise InvalidAddress(f"address is longer than {MAX_ADDRESS_CHARS} characters")
    if text.startswith(("addr1", "addr_test1")):
        try:
            hrp, raw = bech32.decode(text, max_chars=MAX_ADDRESS_CHARS)
        except ValueError as exc:
            raise InvalidAddress(f"address is not valid bech32: {exc}") from None
        expected = "addr" if network_id == 1 else "addr_test"
        if hrp != expected:
            raise InvalidAddress(f"address prefix must be {expected!r} on this network, got {hrp!r}")
        return _check_raw(raw, network_id)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InvalidAddress("address must be bech32 (addr…) or the raw hex CIP-30 returns") from None
    return _check_raw(raw, network_id)

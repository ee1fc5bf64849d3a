"""Shelley address validation: a small bech32 decoder (BIP-173, without the 90-character limit).

Only payment addresses are accepted (base, pointer, enterprise); stake and Byron addresses are refused,
and the human-readable prefix and the header's network id must both match the configured network.
"""

from __future__ import annotations

__all__ = ["MAX_ADDRESS_CHARS", "bech32_decode", "validate_address"]

MAX_ADDRESS_CHARS = 200
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHAR_VALUE = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_HRP = {"mainnet": "addr", "testnet": "addr_test"}
_NETWORK_ID = {"mainnet": 1, "testnet": 0}
# header type nibble -> exact byte length (None: variable, pointer addresses)
_PAYMENT_TYPES: dict[int, int | None] = {0: 57, 1: 57, 2: 57, 3: 57, 4: None, 5: None, 6: 29, 7: 29}


def _polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                check ^= gen
    return check


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: list[int], from_bits: int, to_bits: int) -> bytes:
    acc = bits = 0
    out = bytearray()
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if bits >= from_bits or (acc << (to_bits - bits)) & maxv:
        raise ValueError("invalid bech32 padding")
    return bytes(out)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Return (hrp, payload bytes) of a bech32 string; raise ValueError with a reason."""
    if not isinstance(text, str) or not text:
        raise ValueError("address is empty")
    if len(text) > MAX_ADDRESS_CHARS:
        raise ValueError(f"address is longer than {MAX_ADDRESS_CHARS} characters")
    if text.lower() != text and text.upper() != text:
        raise ValueError("bech32 address mixes upper and lower case")
    text = text.lower()
    hrp, sep, data_part = text.rpartition("1")
    if not sep or not hrp or len(data_part) < 6:
        raise ValueError("not a bech32 string (no separator or too short)")
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError("bech32 prefix has invalid characters")
    try:
        data = [_CHAR_VALUE[c] for c in data_part]
    except KeyError as exc:
        raise ValueError(f"bech32 data has an invalid character {exc.args[0]!r}") from None
    if _polymod(_hrp_expand(hrp) + data) != 1:
        raise ValueError("bech32 checksum is wrong")
    return hrp, _convert_bits(data[:-6], 5, 8)


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

"""Kupo v2 patterns: parsing, matching an output, inclusion and overlap (as Kupo's ``Pattern`` module).

Forms: ``*`` (everything, Byron included), ``*/*`` (Shelley addresses), a full address (bech32, base16 or
base58) or stake address (``stake…``: outputs delegated to it), ``PAYMENT/DELEGATION`` credentials
(``*``, 56-hex hash, 64-hex key, ``vkh1``/``addr_vkh1``/``stake_vkh1``/``script1`` hashes or
``vk``/``addr_vk``/``stake_vk`` keys), ``POLICY.*``, ``POLICY.ASSET``, ``INDEX@TXID`` and ``*@TXID``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from devnet.ogmios import cborraw
from devnet.ogmios.encoding import (
    address_bytes_from_text,
    bech32_decode,
    blake2b_224,
    is_hex,
)

__all__ = [
    "Pattern",
    "PatternError",
    "address_matches",
    "delegation_part",
    "includes",
    "overlaps",
    "parse_pattern",
    "payment_part",
]

ANY: Final = "any"
ANY_SHELLEY: Final = "any_shelley"
EXACT: Final = "exact"
PAYMENT: Final = "payment"
DELEGATION: Final = "delegation"
BOTH: Final = "payment_delegation"
POLICY: Final = "policy"
ASSET: Final = "asset"
OUT_REF: Final = "out_ref"
TX: Final = "transaction"

_KEY_HRPS: Final = ("vk", "addr_vk", "stake_vk")
_HASH_HRPS: Final = ("vkh", "addr_vkh", "stake_vkh", "script")
_MAX_PATTERN_CHARS: Final = 512


class PatternError(ValueError):
    """Not a Kupo pattern."""


@dataclass(frozen=True, slots=True)
class Pattern:
    kind: str
    first: Any = None  # address bytes, payment hash, policy id, tx id…
    second: Any = None  # delegation hash, asset name, output index
    text: str = ""

    def key(self) -> tuple[str, Any, Any]:
        return (self.kind, self.first, self.second)

    def matches(self, tx_id: str, index: int, out: Any) -> bool:
        kind = self.kind
        if kind == ANY:
            return True
        if kind in (POLICY, ASSET):
            names = out.assets.get(self.first)
            return bool(names) and (kind == POLICY or names.get(self.second, 0) != 0)
        if kind == TX:
            return bool(tx_id == self.first)
        if kind == OUT_REF:
            return bool(tx_id == self.first and index == self.second)
        return address_matches(self, out.address_bytes)


def payment_part(address: bytes) -> bytes | None:
    """The 28-byte payment credential of a Shelley payment address (base, pointer, enterprise), else None."""
    return address[1:29] if address and address[0] >> 4 <= 7 else None


def delegation_part(address: bytes) -> bytes | None:
    """The 28-byte delegation credential of a base address, else None."""
    return address[29:57] if address and address[0] >> 4 <= 3 and len(address) >= 57 else None


def address_matches(pattern: Pattern, address: bytes) -> bool:
    kind = pattern.kind
    if kind == ANY:
        return True
    if kind == ANY_SHELLEY:
        return bool(address) and address[0] >> 4 <= 7
    if kind == EXACT:
        return bool(address == pattern.first)
    if kind == PAYMENT:
        return bool(payment_part(address) == pattern.first)
    if kind == DELEGATION:
        return bool(delegation_part(address) == pattern.second)
    if kind == BOTH:
        return bool(payment_part(address) == pattern.first and delegation_part(address) == pattern.second)
    return False


def _credential(text: str) -> bytes:
    if is_hex(text, 56):
        return bytes.fromhex(text)
    if is_hex(text, 64):
        return blake2b_224(bytes.fromhex(text))
    decoded = bech32_decode(text)
    if decoded is not None:
        hrp, raw = decoded
        if len(raw) == 32 and hrp in _KEY_HRPS:
            return blake2b_224(raw)
        if len(raw) == 28 and hrp in _HASH_HRPS:
            return raw
    raise PatternError(f"not a credential: {text[:80]!r}")


def parse_pattern(text: str) -> Pattern:
    if not text or len(text) > _MAX_PATTERN_CHARS:
        raise PatternError("empty or oversized pattern")
    if text == "*":
        return Pattern(ANY, text=text)
    if "@" in text:
        index_text, _, tx_id = text.partition("@")
        if not is_hex(tx_id, 64):
            raise PatternError("an output reference pattern needs a 64-hex transaction id")
        if index_text == "*":
            return Pattern(TX, tx_id, text=text)
        if not index_text.isdigit() or len(index_text) > 10:
            raise PatternError("an output index must be a non-negative integer")
        return Pattern(OUT_REF, tx_id, int(index_text), text=text)
    if "/" in text:
        payment, _, delegation = text.partition("/")
        if payment == "*" and delegation == "*":
            return Pattern(ANY_SHELLEY, text=text)
        if payment == "*":
            return Pattern(DELEGATION, None, _credential(delegation), text=text)
        if delegation == "*":
            return Pattern(PAYMENT, _credential(payment), text=text)
        return Pattern(BOTH, _credential(payment), _credential(delegation), text=text)
    policy, dot, name = text.partition(".")
    if dot and is_hex(policy, 56):
        if name == "*":
            return Pattern(POLICY, policy, text=text)
        if is_hex(name) and len(name) <= 64:
            return Pattern(ASSET, policy, name, text=text)
        raise PatternError("an asset name must be base16 (at most 32 bytes)")
    return _address_pattern(text)


def _address_pattern(text: str) -> Pattern:
    decoded = bech32_decode(text)
    if decoded is not None and decoded[0] in ("stake", "stake_test") and len(decoded[1]) == 29:
        return Pattern(DELEGATION, None, decoded[1][1:], text=text)
    raw = address_bytes_from_text(text)
    if raw is None or not _valid_output_address(raw):
        raise PatternError(f"not a pattern: {text[:80]!r}")
    return Pattern(EXACT, raw, text=text)


def _valid_output_address(raw: bytes) -> bool:
    kind = raw[0] >> 4
    if kind <= 3:
        return len(raw) == 57
    if kind in (4, 5):
        return 30 <= len(raw) <= 57
    if kind in (6, 7):
        return len(raw) == 29
    if kind == 8:
        try:
            return cborraw.item_end(raw, 0) == len(raw)
        except cborraw.CborError:
            return False
    return False


def includes(x: Pattern, y: Pattern) -> bool:
    """Whether every output matched by ``y`` is also matched by ``x``."""
    if y.kind == EXACT:
        return x.kind in (ANY, ANY_SHELLEY, EXACT, PAYMENT, DELEGATION, BOTH) and address_matches(x, y.first)
    if x.kind == ANY:
        return True
    if x.kind == ANY_SHELLEY:
        return y.kind in (ANY_SHELLEY, PAYMENT, DELEGATION, BOTH)
    pairs: dict[tuple[str, str], Callable[[], bool]] = {
        (PAYMENT, PAYMENT): lambda: x.first == y.first,
        (PAYMENT, BOTH): lambda: x.first == y.first,
        (DELEGATION, DELEGATION): lambda: x.second == y.second,
        (DELEGATION, BOTH): lambda: x.second == y.second,
        (BOTH, BOTH): lambda: x.key() == y.key(),
        (POLICY, POLICY): lambda: x.first == y.first,
        (POLICY, ASSET): lambda: x.first == y.first,
        (ASSET, ASSET): lambda: x.key() == y.key(),
        (TX, TX): lambda: x.first == y.first,
        (TX, OUT_REF): lambda: x.first == y.first,
        (OUT_REF, OUT_REF): lambda: x.key() == y.key(),
    }
    check = pairs.get((x.kind, y.kind))
    return bool(check and check())


def _overlap_two(p: Pattern, q: Pattern) -> bool:
    if p.kind == ANY:
        return True
    if p.kind == EXACT:
        return q.kind in (ANY_SHELLEY, EXACT, PAYMENT, DELEGATION, BOTH) and address_matches(q, p.first)
    if p.kind == BOTH and q.kind == BOTH:
        return bool(p.first == q.first or p.second == q.second)
    return includes(p, q)


def overlaps(p: Pattern, patterns: list[Pattern]) -> bool:
    """Whether ``p`` could match an output that one of ``patterns`` also matches."""
    return any(_overlap_two(p, q) or _overlap_two(q, p) for q in patterns)

"""Cardano value helpers: asset ids (policy id + asset name), values, lovelace, hex ids.

An asset is identified by its policy id AND asset name, never by name alone: a token with the
same name under another policy is a different (possibly hostile) asset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

__all__ = [
    "LOVELACE_PER_ADA",
    "MAX_ASSET_NAME_BYTES",
    "AssetId",
    "Value",
    "ada_to_lovelace",
    "is_hex",
    "lovelace_to_ada",
    "validate_tx_id",
]

LOVELACE_PER_ADA = 1_000_000
MAX_ASSET_NAME_BYTES = 32
POLICY_ID_HEX_LEN = 56
TX_ID_HEX_LEN = 64
MAX_QUANTITY = 2**64 - 1
_HEX_RE = re.compile(r"^[0-9a-f]*$")


def is_hex(text: str, length: int | None = None) -> bool:
    """True when ``text`` is lowercase hex of even length (and exactly ``length`` chars if given)."""
    if not isinstance(text, str) or len(text) % 2 or not _HEX_RE.match(text):
        return False
    return length is None or len(text) == length


def validate_tx_id(tx_id: str) -> str:
    """Return ``tx_id`` if it is 64 lowercase hex characters, else raise ValueError."""
    if not is_hex(tx_id, TX_ID_HEX_LEN):
        raise ValueError(f"transaction id must be {TX_ID_HEX_LEN} lowercase hex characters, got {tx_id!r:.80}")
    return tx_id


@dataclass(frozen=True, order=True)
class AssetId:
    """A native asset: 56-hex policy id plus hex asset name (0..32 bytes)."""

    policy_id: str
    asset_name: str = ""

    def __post_init__(self) -> None:
        if not is_hex(self.policy_id, POLICY_ID_HEX_LEN):
            raise ValueError(
                f"policy id must be {POLICY_ID_HEX_LEN} lowercase hex characters, got {self.policy_id!r:.80}")
        if not is_hex(self.asset_name) or len(self.asset_name) > 2 * MAX_ASSET_NAME_BYTES:
            raise ValueError(
                f"asset name must be hex of at most {MAX_ASSET_NAME_BYTES} bytes, got {self.asset_name!r:.80}")

    @classmethod
    def parse(cls, text: str) -> AssetId:
        """Parse ``policy.namehex``, ``policynamehex`` (concatenated) or a bare ``policy`` (empty name)."""
        if not isinstance(text, str):
            raise ValueError("asset id must be a string")
        text = text.strip().lower()
        if "." in text:
            policy, _, name = text.partition(".")
            return cls(policy, name)
        if len(text) < POLICY_ID_HEX_LEN:
            raise ValueError(f"asset id must start with a {POLICY_ID_HEX_LEN}-hex policy id, got {text!r:.80}")
        return cls(text[:POLICY_ID_HEX_LEN], text[POLICY_ID_HEX_LEN:])

    @classmethod
    def from_name(cls, policy_id: str, name: str) -> AssetId:
        """Build from a UTF-8 asset name (e.g. ``CREATE``)."""
        return cls(policy_id, name.encode("utf-8").hex())

    @property
    def unit(self) -> str:
        """Concatenated ``policy + name`` (the CIP-30 / Blockfrost "unit")."""
        return self.policy_id + self.asset_name

    @property
    def name_bytes(self) -> bytes:
        return bytes.fromhex(self.asset_name)

    def __str__(self) -> str:
        return f"{self.policy_id}.{self.asset_name}" if self.asset_name else self.policy_id


def _check_quantity(quantity: int, what: str) -> int:
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise ValueError(f"{what} must be an integer")
    if quantity < 0 or quantity > MAX_QUANTITY:
        raise ValueError(f"{what} must be between 0 and 2^64-1, got {quantity}")
    return quantity


@dataclass(frozen=True)
class Value:
    """Lovelace plus native assets, non-negative; zero quantities are dropped."""

    lovelace: int = 0
    assets: Mapping[AssetId, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_quantity(self.lovelace, "lovelace")
        clean = {}
        for asset, qty in self.assets.items():
            if not isinstance(asset, AssetId):
                raise ValueError(f"asset keys must be AssetId, got {type(asset).__name__}")
            if _check_quantity(qty, f"quantity of {asset}"):
                clean[asset] = qty
        object.__setattr__(self, "assets", dict(sorted(clean.items())))

    def quantity(self, asset: AssetId) -> int:
        return self.assets.get(asset, 0)

    def __add__(self, other: Value) -> Value:
        assets = dict(self.assets)
        for asset, qty in other.assets.items():
            assets[asset] = assets.get(asset, 0) + qty
        return Value(self.lovelace + other.lovelace, assets)

    def __sub__(self, other: Value) -> Value:
        """Difference; raises ValueError if any amount would go negative."""
        if other.lovelace > self.lovelace:
            raise ValueError(f"insufficient lovelace: have {self.lovelace}, need {other.lovelace}")
        assets = dict(self.assets)
        for asset, qty in other.assets.items():
            have = assets.get(asset, 0)
            if qty > have:
                raise ValueError(f"insufficient {asset}: have {have}, need {qty}")
            assets[asset] = have - qty
        return Value(self.lovelace - other.lovelace, assets)

    def covers(self, other: Value) -> bool:
        """True when every amount in ``other`` is available here."""
        return other.lovelace <= self.lovelace and all(self.quantity(a) >= q for a, q in other.assets.items())

    @classmethod
    def total(cls, values: Iterable[Value]) -> Value:
        result = cls()
        for value in values:
            result = result + value
        return result


def ada_to_lovelace(ada: str | int | Decimal) -> int:
    """Convert an ADA amount (``"1.5"``) to lovelace exactly; more than 6 decimals is an error."""
    try:
        amount = Decimal(str(ada))
    except InvalidOperation:
        raise ValueError(f"not an ADA amount: {ada!r}") from None
    lovelace = amount * LOVELACE_PER_ADA
    if lovelace != lovelace.to_integral_value() or lovelace < 0:
        raise ValueError(f"ADA amount must be non-negative with at most 6 decimals, got {ada!r}")
    return int(lovelace)


def lovelace_to_ada(lovelace: int) -> Decimal:
    return Decimal(lovelace) / LOVELACE_PER_ADA

"""The signing policy: what a well-formed transaction body may do, checked before any signature.

Stateless rules live here; the stateful ones (a generation id is never signed twice, the per-day token
cap) are checked by ``signer.core`` against ``signer.state`` inside the same SQLite transaction that
records them. Each rule raises :class:`signer.errors.Refusal` with a RefusalReason name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import cbor2

from common import merkle
from signer.errors import Refusal
from signer.metadata import read_batch_commitment
from signer.tx import (
    DecodedTx,
    Output,
    hash_field,
    malformed,
    parse_inputs,
    parse_key_hashes,
    parse_multiasset,
    parse_output,
    uint_field,
)

__all__ = ["ALLOWED_BODY_KEYS", "BurnPlan", "Caps", "PolicyConfig", "SinkMode", "SlotClock", "check_burn",
           "check_mint", "check_slot", "fee_cap", "sink_min_utxo"]

SinkMode = Literal["mint", "address"]

# Body fields a burn or ceremony may use: inputs, outputs, fee, ttl, aux data hash, validity start,
# mint, required signers, network id. Everything else is refused, with a specific reason when one exists.
ALLOWED_BODY_KEYS = frozenset({0, 1, 2, 3, 7, 8, 9, 14, 15})
_FORBIDDEN_REASONS = {
    4: ("CERTIFICATES_NOT_ALLOWED", "certificates (field 4) are not allowed"),
    5: ("WITHDRAWALS_NOT_ALLOWED", "reward withdrawals (field 5) are not allowed"),
    16: ("COLLATERAL_RETURN_NOT_ALLOWED", "a collateral return (field 16) is not allowed"),
    19: ("VOTES_NOT_ALLOWED", "governance votes (field 19) are not allowed"),
    20: ("PROPOSALS_NOT_ALLOWED", "governance proposals (field 20) are not allowed"),
}
_KNOWN_NAMES = {6: "protocol update", 11: "script data hash", 13: "collateral inputs",
                17: "total collateral", 18: "reference inputs", 21: "treasury value", 22: "treasury donation"}


# Bytes the signed transaction has beyond the unsigned body and auxiliary data: the 4-array header, the
# is_valid flag, the witness map and array headers (16, generously), one [vkey, signature] pair per key
# (1 + 34 + 66), and in mint mode the policy script under witness key 1 (2 + 32, rounded up).
SIGNED_OVERHEAD_BYTES: Final = 16
VKEY_WITNESS_BYTES: Final = 101
POLICY_SCRIPT_WITNESS_BYTES: Final = 36
UTXO_ENTRY_OVERHEAD_BYTES: Final = 160  # Babbage/Conway min-UTxO: (160 + output size) * coinsPerUTxOByte
_NINE_BYTE_COIN: Final = (1 << 64) - 1  # a coin field at its widest encoding (9 bytes)


@dataclass(frozen=True)
class Caps:
    max_fee_lovelace: int
    max_sink_lovelace: int
    max_tokens_per_tx: int
    max_tokens_per_day: int
    max_ttl_slots: int
    max_generation_ids: int
    max_lovelace_per_day: int = 250_000_000
    min_fee_a: int = 44
    min_fee_b: int = 155_381
    fee_margin_lovelace: int = 50_000
    coins_per_utxo_byte: int = 4_310


@dataclass(frozen=True)
class SlotClock:
    """The network's slot by the signer's own clock: slot 0 at ``zero_time`` (unix s), ``slot_length_s`` each."""

    zero_time: float
    slot_length_s: int
    tolerance: int

    def slot_at(self, now: float) -> int:
        return max(0, math.floor((now - self.zero_time) / self.slot_length_s))


@dataclass(frozen=True)
class PolicyConfig:
    network_id: int
    sink_mode: SinkMode
    custodial_address: bytes
    sink_address: bytes
    policy_id: bytes
    asset_name: bytes
    payment_key_hash: bytes
    policy_key_hash: bytes | None
    caps: Caps
    clock: SlotClock | None = None  # None only where a test builds the config by hand


def check_slot(current_slot: int, cfg: PolicyConfig, now: float) -> None:
    """The caller's ``current_slot`` bounds the TTL, so it must agree with the signer's clock: a caller that
    claims a far-future slot could otherwise stockpile transactions valid for years."""
    if cfg.clock is None:
        return
    own = cfg.clock.slot_at(now)
    if abs(current_slot - own) > cfg.clock.tolerance:
        raise Refusal("SLOT_OUT_OF_SYNC", f"current_slot {current_slot} is more than {cfg.clock.tolerance} slots "
                      f"from the signer's clock (slot {own})")


def fee_cap(tx: DecodedTx, caps: Caps, *, witnesses: int, policy_script: bool) -> int:
    """The most this transaction may pay: the linear min fee of its signed size, plus the margin, and never
    above ``max_fee_lovelace``. The size counts the body and auxiliary data as sent plus what the witnesses
    add; never the caller's witness set (ignored, and free to pad)."""
    size = (len(tx.body_bytes) + (len(tx.aux_bytes) if tx.aux_bytes else 1) + SIGNED_OVERHEAD_BYTES
            + VKEY_WITNESS_BYTES * witnesses + (POLICY_SCRIPT_WITNESS_BYTES if policy_script else 0))
    return min(caps.max_fee_lovelace, caps.min_fee_a * size + caps.min_fee_b + caps.fee_margin_lovelace)


def _check_fee(tx: DecodedTx, fee: int, cfg: PolicyConfig, *, witnesses: int, policy_script: bool) -> None:
    cap = fee_cap(tx, cfg.caps, witnesses=witnesses, policy_script=policy_script)
    if fee > cap:
        raise Refusal("FEE_OVER_CAP", f"fee {fee} lovelace exceeds this transaction's cap of {cap} "
                      f"(min_fee_a * size + min_fee_b + margin, at most {cfg.caps.max_fee_lovelace})")


def sink_min_utxo(out: Output, coins_per_utxo_byte: int) -> int:
    """The largest honest min-UTxO of ``out``: (160 + size) * coinsPerUTxOByte, the size taken of its
    canonical post-Alonzo map form with the coin at its widest (9 bytes). Encoders differ by a few bytes
    (array or map, coin width); padding an output (non-minimal lengths) must not buy more ADA."""
    value: Any = [_NINE_BYTE_COIN, out.assets] if out.assets else _NINE_BYTE_COIN
    return (UTXO_ENTRY_OVERHEAD_BYTES + len(cbor2.dumps({0: out.address, 1: value}))) * coins_per_utxo_byte


@dataclass(frozen=True)
class BurnPlan:
    tx_id: bytes
    tokens: int
    fee_lovelace: int
    root: bytes
    sign_with_policy_key: bool
    sink_lovelace: int = 0
    inputs: tuple[tuple[bytes, int], ...] = ()
    ttl: int = 0

    @property
    def lovelace(self) -> int:
        """Lovelace this transaction gives away (fee + ADA to the sink), counted against the daily cap."""
        return self.fee_lovelace + self.sink_lovelace


def _check_fields(body: dict[int, Any]) -> None:
    for key in sorted(body):
        if key in ALLOWED_BODY_KEYS:
            continue
        if key in _FORBIDDEN_REASONS:
            reason, detail = _FORBIDDEN_REASONS[key]
            raise Refusal(reason, detail)
        name = _KNOWN_NAMES.get(key, "unknown field")
        raise Refusal("UNKNOWN_FIELD", f"body field {key} ({name}) is not allowed")


@dataclass(frozen=True)
class _Common:
    inputs: list[tuple[bytes, int]]
    outputs: list[Output]
    fee: int
    ttl: int


def _check_common(tx: DecodedTx, cfg: PolicyConfig, current_slot: int) -> _Common:
    body = tx.body
    _check_fields(body)
    inputs = parse_inputs(body[0])
    network = uint_field(body, 15, "network id")
    if network is not None and network != cfg.network_id:
        raise Refusal("NETWORK_ID_MISMATCH", f"body network id {network}, signer network id {cfg.network_id}")
    if 14 in body:
        own = {cfg.payment_key_hash, cfg.policy_key_hash}
        signers = parse_key_hashes(body[14], "required signer")
        if any(h not in own for h in signers):
            raise Refusal("UNKNOWN_FIELD", "required signers (field 14) may name only the signer's own keys")
        if len(set(signers)) != len(signers):
            raise malformed("a required signer (field 14) is listed twice")
    hash_field(body, 7, 32, "auxiliary data hash")
    uint_field(body, 8, "validity start")
    if not isinstance(body[1], list) or not body[1]:
        raise malformed("outputs must be a non-empty array")
    outputs = [parse_output(o) for o in body[1]]
    for index, out in enumerate(outputs):
        if out.address not in (cfg.custodial_address, cfg.sink_address):
            raise Refusal("OUTPUT_NOT_ALLOWED",
                          f"output {index} pays an address that is neither the custodial address nor the sink")
        if out.has_datum or out.has_script_ref:
            raise Refusal("OUTPUT_NOT_ALLOWED", f"output {index} carries a datum or a reference script")
    fee = uint_field(body, 2, "fee") or 0
    return _Common(inputs, outputs, fee, _check_ttl(body, cfg, current_slot))


def _check_ttl(body: dict[int, Any], cfg: PolicyConfig, current_slot: int) -> int:
    ttl = uint_field(body, 3, "ttl")
    if ttl is None:
        raise Refusal("TTL_MISSING", "the transaction has no TTL (field 3)")
    if ttl <= current_slot:
        raise Refusal("TTL_EXPIRED", f"ttl {ttl} is not after the current slot {current_slot}")
    if ttl > current_slot + cfg.caps.max_ttl_slots:
        raise Refusal("TTL_TOO_FAR",
                      f"ttl {ttl} is more than {cfg.caps.max_ttl_slots} slots past the current slot {current_slot}")
    return ttl


def _sink_flows(outputs: list[Output], cfg: PolicyConfig) -> tuple[int, int]:
    """(lovelace, $CREATE units) sent to the sink. Mint mode sends nothing there (ADA sent there is simply
    destroyed); address mode sends exactly one output, carrying only $CREATE and its minimum ADA."""
    sink = [out for out in outputs if out.address == cfg.sink_address]
    if cfg.sink_mode == "mint":
        if sink:
            raise Refusal("SINK_OUTPUT_NOT_ALLOWED", "in mint mode a burn sends nothing to the sink")
        return 0, 0
    if len(sink) != 1:
        raise Refusal("SINK_OUTPUT_NOT_ALLOWED",
                      f"in address mode a burn has exactly one sink output, this one has {len(sink)}")
    [out] = sink
    if set(out.assets) != {cfg.policy_id} or set(out.assets[cfg.policy_id]) != {cfg.asset_name}:
        raise Refusal("OUTPUT_NOT_ALLOWED", "the sink output may carry only $CREATE besides its ADA")
    ceiling = min(cfg.caps.max_sink_lovelace, sink_min_utxo(out, cfg.caps.coins_per_utxo_byte))
    if out.lovelace > ceiling:
        raise Refusal("SINK_ADA_OVER_CAP", f"{out.lovelace} lovelace to the sink exceeds its min-UTxO bound of "
                      f"{ceiling} (coinsPerUTxOByte {cfg.caps.coins_per_utxo_byte}, at most "
                      f"{cfg.caps.max_sink_lovelace})")
    return out.lovelace, out.assets[cfg.policy_id][cfg.asset_name]


def _mint_of(tx: DecodedTx, cfg: PolicyConfig) -> int:
    """The signed quantity of $CREATE minted (negative = burned); refuses anything else in the mint."""
    if 9 not in tx.body:
        return 0
    if cfg.sink_mode == "address":
        raise Refusal("MINT_NOT_ALLOWED", "address mode never mints or burns")
    mint = parse_multiasset(tx.body[9], "mint", signed=True)
    total = 0
    for policy, assets in mint.items():
        if policy != cfg.policy_id:
            raise Refusal("MINT_FOREIGN_POLICY", f"mint under foreign policy {policy.hex()}")
        for name, quantity in assets.items():
            if name != cfg.asset_name:
                raise Refusal("MINT_NOT_ALLOWED", f"asset {name.hex()!r} is not $CREATE")
            total += quantity
    return total


def check_burn(tx: DecodedTx, generation_ids: Sequence[str], current_slot: int, cfg: PolicyConfig,
               root: bytes | None = None) -> BurnPlan:
    """Every stateless rule for a burn batch; returns what the stateful checks need. ``root`` is the
    ids' Merkle root when the caller computed it already."""
    if len(generation_ids) > cfg.caps.max_generation_ids:
        raise Refusal("TOO_MANY_GENERATION_IDS",
                      f"{len(generation_ids)} generation ids; at most {cfg.caps.max_generation_ids} per request")
    common = _check_common(tx, cfg, current_slot)
    sink_lovelace, sink_tokens = _sink_flows(common.outputs, cfg)
    minted = _mint_of(tx, cfg)
    if minted > 0:
        raise Refusal("MINT_POSITIVE", "a burn batch may not mint; positive mints need the mint ceremony")
    burned = -minted if cfg.sink_mode == "mint" else sink_tokens
    if burned != len(generation_ids):
        raise Refusal("BURN_COUNT_MISMATCH",
                      f"the transaction burns {burned} $CREATE for {len(generation_ids)} generation ids")
    if burned > cfg.caps.max_tokens_per_tx:
        raise Refusal("TOKENS_PER_TX_OVER_CAP",
                      f"{burned} tokens in one transaction exceeds the cap of {cfg.caps.max_tokens_per_tx}")
    commitment = read_batch_commitment(tx)
    root = merkle.merkle_root(generation_ids) if root is None else root
    if commitment.count != len(generation_ids) or commitment.root != root:
        raise Refusal("METADATA_MISMATCH", "metadata count or Merkle root differs from the generation ids sent")
    with_policy = minted != 0 or _names_policy_key(tx, cfg)
    _check_fee(tx, common.fee, cfg, witnesses=2 if with_policy else 1, policy_script=minted != 0)
    return BurnPlan(tx_id=tx.tx_id, tokens=burned, fee_lovelace=common.fee, root=root,
                    sign_with_policy_key=with_policy, sink_lovelace=sink_lovelace,
                    inputs=tuple(common.inputs), ttl=common.ttl)


def _names_policy_key(tx: DecodedTx, cfg: PolicyConfig) -> bool:
    return cfg.policy_key_hash is not None and 14 in tx.body and cfg.policy_key_hash in parse_key_hashes(
        tx.body[14], "required signer")


def check_mint(tx: DecodedTx, quantity: int, current_slot: int, cfg: PolicyConfig) -> int:
    """Rules for the operator's mint ceremony: a positive mint of exactly ``quantity`` $CREATE, paid only
    to the custodial address, with the same fee, TTL and field rules as a burn. Returns the fee."""
    if cfg.sink_mode != "mint" or cfg.policy_key_hash is None:
        raise Refusal("MINT_NOT_ALLOWED", "the mint ceremony needs mint mode and a policy key")
    common = _check_common(tx, cfg, current_slot)
    if any(out.address == cfg.sink_address for out in common.outputs):
        raise Refusal("SINK_OUTPUT_NOT_ALLOWED", "a mint ceremony pays only the custodial address")
    minted = _mint_of(tx, cfg)
    if minted != quantity or quantity <= 0:
        raise Refusal("MINT_NOT_ALLOWED", f"the transaction mints {minted} $CREATE, the ceremony stated {quantity}")
    _check_fee(tx, common.fee, cfg, witnesses=2, policy_script=True)
    return common.fee

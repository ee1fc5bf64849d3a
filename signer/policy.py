"""The signing policy: what a well-formed transaction body may do, checked before any signature.

Stateless rules live here; the stateful ones (a generation id is never signed twice, the per-day token
cap) are checked by ``signer.core`` against ``signer.state`` inside the same SQLite transaction that
records them. Each rule raises :class:`signer.errors.Refusal` with a RefusalReason name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

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

__all__ = ["ALLOWED_BODY_KEYS", "BurnPlan", "Caps", "PolicyConfig", "SinkMode", "check_burn", "check_mint"]

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


@dataclass(frozen=True)
class Caps:
    max_fee_lovelace: int
    max_sink_lovelace: int
    max_tokens_per_tx: int
    max_tokens_per_day: int
    max_ttl_slots: int
    max_generation_ids: int


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


@dataclass(frozen=True)
class BurnPlan:
    tx_id: bytes
    tokens: int
    fee_lovelace: int
    root: bytes
    sign_with_policy_key: bool


def _check_fields(body: dict[int, Any]) -> None:
    for key in sorted(body):
        if key in ALLOWED_BODY_KEYS:
            continue
        if key in _FORBIDDEN_REASONS:
            reason, detail = _FORBIDDEN_REASONS[key]
            raise Refusal(reason, detail)
        name = _KNOWN_NAMES.get(key, "unknown field")
        raise Refusal("UNKNOWN_FIELD", f"body field {key} ({name}) is not allowed")


def _check_common(tx: DecodedTx, cfg: PolicyConfig, current_slot: int) -> tuple[list[Output], int]:
    body = tx.body
    _check_fields(body)
    parse_inputs(body[0])
    network = uint_field(body, 15, "network id")
    if network is not None and network != cfg.network_id:
        raise Refusal("NETWORK_ID_MISMATCH", f"body network id {network}, signer network id {cfg.network_id}")
    if 14 in body:
        own = {cfg.payment_key_hash, cfg.policy_key_hash}
        if any(h not in own for h in parse_key_hashes(body[14], "required signer")):
            raise Refusal("UNKNOWN_FIELD", "required signers (field 14) may name only the signer's own keys")
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
    if fee > cfg.caps.max_fee_lovelace:
        raise Refusal("FEE_OVER_CAP", f"fee {fee} lovelace exceeds the cap of {cfg.caps.max_fee_lovelace}")
    _check_ttl(body, cfg, current_slot)
    return outputs, fee


def _check_ttl(body: dict[int, Any], cfg: PolicyConfig, current_slot: int) -> None:
    ttl = uint_field(body, 3, "ttl")
    if ttl is None:
        raise Refusal("TTL_MISSING", "the transaction has no TTL (field 3)")
    if ttl <= current_slot:
        raise Refusal("TTL_EXPIRED", f"ttl {ttl} is not after the current slot {current_slot}")
    if ttl > current_slot + cfg.caps.max_ttl_slots:
        raise Refusal("TTL_TOO_FAR",
                      f"ttl {ttl} is more than {cfg.caps.max_ttl_slots} slots past the current slot {current_slot}")


def _sink_flows(outputs: list[Output], cfg: PolicyConfig) -> tuple[int, int]:
    """(lovelace, $CREATE units) sent to the sink; refuses any other asset sent there."""
    lovelace = tokens = 0
    for out in outputs:
        if out.address != cfg.sink_address:
            continue
        lovelace += out.lovelace
        for policy, assets in out.assets.items():
            for name, quantity in assets.items():
                if policy != cfg.policy_id or name != cfg.asset_name or cfg.sink_mode == "mint":
                    raise Refusal("OUTPUT_NOT_ALLOWED", "the sink may receive only ADA and, in address mode, $CREATE")
                tokens += quantity
    if lovelace > cfg.caps.max_sink_lovelace:
        raise Refusal("SINK_ADA_OVER_CAP",
                      f"{lovelace} lovelace to the sink exceeds the cap of {cfg.caps.max_sink_lovelace}")
    return lovelace, tokens


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
    outputs, fee = _check_common(tx, cfg, current_slot)
    _, sink_tokens = _sink_flows(outputs, cfg)
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
    return BurnPlan(tx_id=tx.tx_id, tokens=burned, fee_lovelace=fee, root=root,
                    sign_with_policy_key=minted != 0 or _names_policy_key(tx, cfg))


def _names_policy_key(tx: DecodedTx, cfg: PolicyConfig) -> bool:
    return cfg.policy_key_hash is not None and 14 in tx.body and cfg.policy_key_hash in parse_key_hashes(
        tx.body[14], "required signer")


def check_mint(tx: DecodedTx, quantity: int, current_slot: int, cfg: PolicyConfig) -> int:
    """Rules for the operator's mint ceremony: a positive mint of exactly ``quantity`` $CREATE, paid only
    to the custodial address, with the same fee, TTL and field rules as a burn. Returns the fee."""
    if cfg.sink_mode != "mint" or cfg.policy_key_hash is None:
        raise Refusal("MINT_NOT_ALLOWED", "the mint ceremony needs mint mode and a policy key")
    outputs, fee = _check_common(tx, cfg, current_slot)
    if any(out.address == cfg.sink_address for out in outputs):
        raise Refusal("OUTPUT_NOT_ALLOWED", "a mint ceremony pays only the custodial address")
    minted = _mint_of(tx, cfg)
    if minted != quantity or quantity <= 0:
        raise Refusal("MINT_NOT_ALLOWED", f"the transaction mints {minted} $CREATE, the ceremony stated {quantity}")
    return fee

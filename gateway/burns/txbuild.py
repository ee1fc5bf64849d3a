"""The burn transaction: one Conway tx burning ``n`` $CREATE for ``n`` generation ids, built by hand.

Own CBOR (cbor2, ~0.3 ms; no pycardano on the burner's path), so every byte is ours to reason about
and the signer's field table (signer/README.md §2) is met exactly:

- inputs: the lane's UTxO (plus reserve UTxOs when it is split or topped up), sorted;
- outputs: ``mint`` mode: the change back to the custodial address, split into ``lanes_out`` outputs
  (the lanes); ``address`` mode: first the sink output ``[sink, [min-UTxO, {policy: {name: n}}]]``
  (exactly its min-UTxO, the signer's cap), then the change outputs;
- fee: exactly ``minFeeA × size + minFeeB`` for the size the signed tx will have (the signer's vkey
  witnesses and, in mint mode, the policy script under witness key 1, whose sizes are fixed);
  no reference inputs, so the Conway reference-script fee is zero;
- ttl = tip slot + ttl (validity against tip + 1 holds); network id in the body;
- mint (``mint`` mode only): ``{policy: {name: -n}}``; auxiliary data = the label-1967 commitment
  (``common.commitment``) plus a CIP-20 line for humans; field 7 is its blake2b-256.

No field is empty or zero-valued (Conway decoders refuse them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cbor2

from common.cardano import AssetId, Value
from common.commitment import commitment_for, commitment_metadata
from gateway.burns.signer import SignerIdentity
from gateway.web3.txbuild import encode_value, min_utxo_lovelace

__all__ = ["BuiltBurn", "BurnInput", "BurnNotBuildable", "FeeParams", "address_bytes", "build_burn_tx",
           "signed_tx"]

_VKEY_WITNESS_BYTES = 1 + (2 + 32) + (2 + 64)  # [vkey, signature]
_FEE_ROUNDS = 10
HUMAN_NOTE = "creatorpass: custodial burn backing card credits"


class BurnNotBuildable(Exception):
    """The inputs cannot pay for this burn (tokens, min-UTxO or fee); the message says what is short."""


@dataclass(frozen=True)
class FeeParams:
    min_fee_a: int
    min_fee_b: int
    coins_per_utxo_byte: int
    max_tx_size: int


@dataclass(frozen=True)
class BurnInput:
    tx_id: str
    index: int
    value: Value

    @property
    def ref(self) -> tuple[str, int]:
        return (self.tx_id, self.index)


@dataclass(frozen=True)
class BuiltBurn:
    tx_id: str
    body: bytes
    aux: bytes
    unsigned: bytes  # [body, {}, true, aux]: what the signer reads
    fee: int
    ttl_slot: int
    inputs: tuple[tuple[str, int], ...]
    change: tuple[tuple[int, int, int], ...]  # (output index, lovelace, $CREATE) of each lane output


def address_bytes(bech32_address: str) -> bytes:
    from common import bech32

    _hrp, raw = bech32.decode(bech32_address)
    return raw


def _witness_bytes(identity: SignerIdentity) -> int:
    vkeys = 2 if identity.sink_mode == "mint" else 1
    size = 1 + 1 + 1 + vkeys * _VKEY_WITNESS_BYTES  # map head, key 0, array head, witnesses
    if identity.sink_mode == "mint":
        size += 1 + 1 + len(identity.policy_script_cbor)  # key 1, array head, the script
    return size


def signed_tx(body: bytes, aux: bytes, witness_set_cbor: bytes, policy_script_cbor: bytes, mint: bool) -> bytes:
    """``[body, witnesses, true, aux]`` around the original body bytes (never re-encoded)."""
    witnesses: dict[int, Any] = {0: cbor2.loads(witness_set_cbor)[0]}
    if mint:
        witnesses[1] = [cbor2.loads(policy_script_cbor)]
    return b"\x84" + body + cbor2.dumps(witnesses) + b"\xf5" + aux


def _split(total: int, parts: int) -> list[int]:
    share, rest = divmod(total, parts)
    return [share + (rest if i == 0 else 0) for i in range(parts)]


def _change_outputs(custodial: bytes, lovelace: int, tokens: int, others: dict[AssetId, int], asset: AssetId,
                    lanes_out: int, coins_per_byte: int) -> list[tuple[list[Any], int, int]]:
    outputs: list[tuple[list[Any], int, int]] = []
    for i, (coin, qty) in enumerate(zip(_split(lovelace, lanes_out), _split(tokens, lanes_out), strict=True)):
        assets = dict(others) if i == 0 else {}
        if qty:
            assets[asset] = qty
        value = Value(coin, assets)
        need = min_utxo_lovelace(custodial, Value(0, assets), coins_per_byte)
        if coin < need:
            raise BurnNotBuildable(f"change output {i} would hold {coin} lovelace, under its min-UTxO {need}")
        outputs.append(([custodial, encode_value(value)], coin, qty))
    return outputs


def build_burn_tx(inputs: Sequence[BurnInput], generation_ids: Sequence[str], *, identity: SignerIdentity,
                  params: FeeParams, ttl_slot: int, lanes_out: int = 1) -> BuiltBurn:
    """The unsigned burn of ``len(generation_ids)`` tokens; BurnNotBuildable when the inputs fall short."""
    n = len(generation_ids)
    asset = AssetId(identity.asset_policy_id, identity.asset_name_hex)
    total = Value.total(i.value for i in inputs)
    if total.quantity(asset) < n:
        raise BurnNotBuildable(f"the inputs hold {total.quantity(asset)} $CREATE, the batch burns {n}")
    custodial = address_bytes(identity.custodial_address)
    others = {a: q for a, q in total.assets.items() if a != asset}
    aux = cbor2.dumps(commitment_metadata(commitment_for(list(generation_ids)), [HUMAN_NOTE]))
    aux_hash = hashlib.blake2b(aux, digest_size=32).digest()
    mint_mode = identity.sink_mode == "mint"
    sink: list[list[Any]] = []
    sink_lovelace = 0
    if not mint_mode:
        burned = Value(0, {asset: n})
        sink_raw = address_bytes(identity.sink_address)
        sink_lovelace = min_utxo_lovelace(sink_raw, burned, params.coins_per_utxo_byte)
        sink = [[sink_raw, encode_value(Value(sink_lovelace, burned.assets))]]
    body_map: dict[int, Any] = {
        0: sorted([bytes.fromhex(i.tx_id), i.index] for i in inputs), 2: 0, 3: ttl_slot, 7: aux_hash,
        15: identity.network_id,
    }
    if mint_mode:
        body_map[9] = {bytes.fromhex(asset.policy_id): {asset.name_bytes: -n}}
    fee = 0
    for _ in range(_FEE_ROUNDS):
        change = _change_outputs(custodial, total.lovelace - sink_lovelace - fee, total.quantity(asset) - n,
                                 others, asset, lanes_out, params.coins_per_utxo_byte)
        body_map[1] = sink + [out for out, _, _ in change]
        body_map[2] = fee
        body = cbor2.dumps(body_map)
        size = 1 + len(body) + _witness_bytes(identity) + 1 + len(aux)
        needed = params.min_fee_a * size + params.min_fee_b
        if needed <= fee:  # a body one byte shorter at the higher fee keeps that fee (never under)
            if size > params.max_tx_size:
                raise BurnNotBuildable(f"the burn would be {size} bytes, over the {params.max_tx_size} limit")
            if fee > identity.caps.max_fee_lovelace:
                raise BurnNotBuildable(f"fee {fee} is over the signer's cap {identity.caps.max_fee_lovelace}")
            first = len(sink)
            lanes = tuple((first + i, coin, qty) for i, (_, coin, qty) in enumerate(change))
            return BuiltBurn(hashlib.blake2b(body, digest_size=32).hexdigest(), body, aux,
                             b"\x84" + body + b"\xa0\xf5" + aux, fee, ttl_slot,
                             tuple(sorted(i.ref for i in inputs)), lanes)
        fee = max(fee, needed)
    raise BurnNotBuildable("the fee did not converge")  # sizes are bounded; never seen

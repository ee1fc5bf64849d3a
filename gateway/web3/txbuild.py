"""The quote transaction: a Conway tx paying exactly ``price`` units of $CREATE to the pay-to address.

Built by hand with cbor2 (no pycardano on this path: ~0.2 ms instead of ~45 ms), so every byte is
ours to reason about:

- inputs: the artist's key-locked UTxOs, those holding the asset first (most units first), then
  ADA-only ones (largest first) until fee and min-UTxO are covered;
- outputs: ``[pay_to, [min-UTxO lovelace, {policy: {name: price}}]]`` then the change (every other
  asset and the rest of the lovelace) back to the artist;
- fee: exactly ``minFeeA × size + minFeeB`` for the signed size, counting one vkey witness per
  distinct payment key of the inputs, encoded as a tag-258 set (the largest form wallets produce, so a
  wallet that assembles the tx itself still pays enough); min-UTxO ``(160 + output size) × coinsPerUTxOByte``;
- TTL = tip slot + quote TTL; network id in the body; metadata label 1968 ``{"quote": ref}`` (checked on
  chain) and CIP-20 674 ``{"msg": […]}`` so the wallet shows what the payment is for. ``ref`` is
  ``payment_ref(quote_id)``, a one-way digest: the chain is public, the quote id stays the artist's secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cbor2

from common.cardano import AssetId, Value
from gateway.web3.address import WalletAddress
from gateway.web3.errors import InsufficientCreate, QuoteNotCoverable

__all__ = [
    "MAX_INPUTS",
    "QUOTE_LABEL",
    "FeeParams",
    "QuoteTx",
    "WalletUtxo",
    "build_quote_tx",
    "encode_value",
    "min_utxo_lovelace",
    "payment_ref",
    "quote_metadata",
]

QUOTE_LABEL = 1968
MESSAGE_LABEL = 674
MAX_INPUTS = 60
_WITNESS_BYTES = 1 + (2 + 32) + (2 + 64)  # [vkey, signature]
_FEE_ROUNDS = 8


@dataclass(frozen=True)
class WalletUtxo:
    tx_id: str
    index: int
    address: WalletAddress
    value: Value

    @property
    def out_ref(self) -> tuple[str, int]:
        return (self.tx_id, self.index)


@dataclass(frozen=True)
class FeeParams:
    min_fee_a: int
    min_fee_b: int
    coins_per_utxo_byte: int
    max_tx_size: int
    max_value_size: int = 5000


@dataclass(frozen=True)
class QuoteTx:
    cbor: bytes
    tx_id: str
    fee: int
    ttl_slot: int
    inputs: tuple[tuple[str, int], ...]
    signers: frozenset[bytes]  # payment key hashes whose witnesses the tx needs
    pay_lovelace: int


def encode_value(value: Value) -> Any:
    """Ledger form of a value: a coin, or ``[coin, {policy: {name: qty}}]`` in canonical key order."""
    if not value.assets:
        return value.lovelace
    by_policy: dict[bytes, dict[bytes, int]] = {}
    for asset, qty in value.assets.items():
        by_policy.setdefault(bytes.fromhex(asset.policy_id), {})[asset.name_bytes] = qty
    multi = {p: dict(sorted(names.items(), key=lambda kv: (len(kv[0]), kv[0])))
             for p, names in sorted(by_policy.items())}
    return [value.lovelace, multi]


def _output(address: bytes, value: Value) -> list[Any]:
    return [address, encode_value(value)]


def min_utxo_lovelace(address: bytes, assets: Value, coins_per_utxo_byte: int) -> int:
    """The smallest lovelace that makes ``address`` + ``assets`` a valid output (fixpoint on its size)."""
    lovelace = 0
    for _ in range(_FEE_ROUNDS):
        size = len(cbor2.dumps(_output(address, Value(lovelace, assets.assets))))
        needed = (160 + size) * coins_per_utxo_byte
        if needed <= lovelace:
            return lovelace
        lovelace = needed
    return lovelace


def payment_ref(quote_id: str) -> str:
    """What a payment carries on chain for a quote: blake2b-128 of ``creatorpass-quote:<id>``, 32 hex.

    Whoever holds the quote id can compute it (a hand-built tx needs it); reading it off the chain
    does not give the quote id, which keeps an anonymous quote's status and images to its holder."""
    return hashlib.blake2b(f"creatorpass-quote:{quote_id}".encode(), digest_size=16).hexdigest()


def quote_metadata(quote_id: str) -> dict[int, Any]:
    ref = payment_ref(quote_id)
    return {
        MESSAGE_LABEL: {"msg": ["creatorpass: payment for one AI generation", f"ref {ref}"]},
        QUOTE_LABEL: {"quote": ref},
    }


def _witness_set_size(signers: int) -> int:
    array_head = 1 if signers < 24 else 2
    return 1 + 1 + 3 + array_head + signers * _WITNESS_BYTES  # map, key 0, tag 258, array


def _body(inputs: Sequence[WalletUtxo], outputs: list[list[Any]], fee: int, ttl: int,
          aux_hash: bytes, network_id: int) -> bytes:
    return cbor2.dumps({
        0: [[bytes.fromhex(u.tx_id), u.index] for u in sorted(inputs, key=lambda u: u.out_ref)],
        1: outputs,
        2: fee,
        3: ttl,
        7: aux_hash,
        15: network_id,
    })


def _order(utxos: Iterable[WalletUtxo], asset: AssetId) -> tuple[list[WalletUtxo], list[WalletUtxo]]:
    usable: dict[tuple[str, int], WalletUtxo] = {}
    for utxo in utxos:
        if utxo.address.payment_key_hash is not None:
            usable.setdefault(utxo.out_ref, utxo)
    holding = sorted((u for u in usable.values() if u.value.quantity(asset)),
                     key=lambda u: (-u.value.quantity(asset), len(u.value.assets), u.out_ref))
    others = sorted((u for u in usable.values() if not u.value.quantity(asset)),
                    key=lambda u: (len(u.value.assets) > 0, -u.value.lovelace, u.out_ref))
    return holding, others


@dataclass
class _Attempt:
    tx: QuoteTx | None
    shortfall: int = 0
    detail: str = ""


def _try(inputs: list[WalletUtxo], pay: list[Any], pay_lovelace: int, paid: Value, change_to: WalletAddress,
         params: FeeParams, ttl: int, aux: bytes, network_id: int) -> _Attempt:
    total = Value.total(u.value for u in inputs)
    rest_assets = Value(0, {a: q - paid.quantity(a) for a, q in total.assets.items()})
    change_min = min_utxo_lovelace(change_to.raw, rest_assets, params.coins_per_utxo_byte)
    signers = frozenset(u.address.payment_key_hash for u in inputs if u.address.payment_key_hash)
    aux_hash = hashlib.blake2b(aux, digest_size=32).digest()
    fee = 0
    for _ in range(_FEE_ROUNDS):
        change_lovelace = total.lovelace - pay_lovelace - fee
        if change_lovelace < change_min:
            need = pay_lovelace + change_min + fee
            return _Attempt(None, need - total.lovelace, (
                f"{pay_lovelace} min-UTxO for the payment output, {change_min} for the change, {fee} fee"))
        change = [change_to.raw, encode_value(Value(change_lovelace, rest_assets.assets))]
        body = _body(inputs, [pay, change], fee, ttl, aux_hash, network_id)
        size = 1 + len(body) + _witness_set_size(len(signers)) + 1 + len(aux)
        needed_fee = params.min_fee_a * size + params.min_fee_b
        if needed_fee <= fee:  # (a smaller change can shrink the tx: the fee then covers it with a little over)
            if size > params.max_tx_size:
                return _Attempt(None, 0, f"the tx would be {size} bytes, over the {params.max_tx_size} limit")
            change_size = len(cbor2.dumps(change[1]))
            if change_size > params.max_value_size:
                return _Attempt(None, 0, f"the change would hold {change_size} bytes of assets, over the"
                                         f" {params.max_value_size}-byte value limit")
            tx_bytes = b"\x84" + body + b"\xa0\xf5" + aux
            tx_id = hashlib.blake2b(body, digest_size=32).hexdigest()
            refs = tuple(sorted(u.out_ref for u in inputs))
            return _Attempt(QuoteTx(tx_bytes, tx_id, fee, ttl, refs, signers, pay_lovelace))
        fee = max(fee, needed_fee)
    raise RuntimeError("fee did not converge")  # sizes are bounded; never seen


def build_quote_tx(utxos: Iterable[WalletUtxo], *, pay_to: WalletAddress, change_to: WalletAddress,
                   asset: AssetId, price: int, params: FeeParams, ttl_slot: int, network_id: int,
                   quote_id: str) -> QuoteTx:
    """The unsigned payment tx; InsufficientCreate (402) or QuoteNotCoverable (422) when it cannot be built."""
    holding, others = _order(utxos, asset)
    if sum(u.value.quantity(asset) for u in holding) < price:
        raise InsufficientCreate()
    paid = Value(0, {asset: price})
    pay_lovelace = min_utxo_lovelace(pay_to.raw, paid, params.coins_per_utxo_byte)
    pay = _output(pay_to.raw, Value(pay_lovelace, paid.assets))
    aux = cbor2.dumps(quote_metadata(quote_id))
    inputs: list[WalletUtxo] = []
    for utxo in holding:
        inputs.append(utxo)
        if sum(u.value.quantity(asset) for u in inputs) >= price:
            break
    pending = list(others)
    while True:
        attempt = _try(inputs, pay, pay_lovelace, paid, change_to, params, ttl_slot, aux, network_id)
        if attempt.tx is not None:
            return attempt.tx
        if attempt.shortfall <= 0 and attempt.detail:
            raise QuoteNotCoverable(f"the payment cannot be built from these UTxOs: {attempt.detail}",
                                    code="quote_too_large")
        if not pending or len(inputs) >= MAX_INPUTS:
            have = sum(u.value.lovelace for u in inputs)
            raise QuoteNotCoverable(
                f"the UTxOs visible for this address cannot pay for the transaction: they hold {have} lovelace"
                f" but it needs {have + max(attempt.shortfall, 0)} ({attempt.detail});"
                f" missing {max(attempt.shortfall, 0)} lovelace. Send all of the wallet's UTxOs"
                " (CIP-30 getUtxos()) or add ADA to the address.",
                extra={"missing_lovelace": max(attempt.shortfall, 0), "available_lovelace": have},
            )
        inputs.append(pending.pop(0))

"""The ledger rules: each check yields an Ogmios-shaped failure; the lowest priority number wins."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from devnet.ledger.address import address_network, payment_credential
from devnet.ledger.native import NativeScript, NativeScriptError, parse_script_ref, script_ref_size
from devnet.ledger.params import MAX_REF_SCRIPTS_BYTES, ProtocolParameters
from devnet.ledger.types import LedgerRejection, OutRef, Tx, TxOut
from devnet.values import add_assets, out_ref_to_ogmios, output_to_ogmios, value_to_ogmios

__all__ = ["LedgerContext", "UtxoLookup", "evaluate_tx", "reject_unsupported", "validate_tx"]

UtxoLookup = Callable[[OutRef], TxOut | None]
_MAX_METADATUM_BYTES = 64
# Body keys and witness keys the devnet does not model (Plutus, certificates, governance, …).
_UNSUPPORTED_BODY = {4: "certificates", 5: "withdrawals", 11: "a script data hash",
                     13: "collateral inputs", 16: "a collateral return", 17: "total collateral",
                     19: "votes", 20: "governance proposals", 21: "a treasury value", 22: "a treasury donation"}
_UNSUPPORTED_WITNESS = {2: "bootstrap (Byron) witnesses", 3: "Plutus V1 scripts", 4: "Plutus datums",
                        5: "redeemers", 6: "Plutus V2 scripts", 7: "Plutus V3 scripts"}


@dataclass(frozen=True, slots=True)
class LedgerContext:
    params: ProtocolParameters
    network_id: int
    slot: int  # the slot the tx is validated for (the next block's)

    @property
    def network(self) -> str:
        return "mainnet" if self.network_id == 1 else "testnet"


def reject_unsupported(tx: Tx) -> None:
    """Refuse what the devnet does not model (Plutus above all) with a clear 3997 error."""
    features = [name for key, name in _UNSUPPORTED_BODY.items() if key in tx.body]
    features += [name for key, name in _UNSUPPORTED_WITNESS.items() if tx.witness_set.get(key)]
    if not tx.is_valid:
        features.append("an is_valid flag of false")
    if features:
        raise LedgerRejection(
            3997,
            "The creatorpass devnet does not support this transaction: it carries "
            + ", ".join(features) + ". Only vkey witnesses and native scripts are modelled (no Plutus).",
            {"error": "UnsupportedByDevnet: " + ", ".join(features)},
        )


def evaluate_tx(tx: Tx, utxo: Mapping[OutRef, TxOut], additional_utxo: Iterable[OutRef]) -> list[Any]:
    """``evaluateTransaction`` without Plutus: overlapping additional UTxO is 3002; otherwise no budgets."""
    overlapping = [ref for ref in additional_utxo if ref in utxo]
    if overlapping:
        raise LedgerRejection(
            3002,
            "Some user-provided additional UTxO entries overlap with those that exist in the ledger.",
            {"overlappingOutputReferences": [out_ref_to_ogmios(r.tx_id, r.index) for r in overlapping]},
        )
    reject_unsupported(tx)
    return []


def _failure(code: int, message: str, data: Any = None) -> LedgerRejection:
    return LedgerRejection(code, message, data)


def validate_tx(
    tx: Tx, lookup: UtxoLookup, ctx: LedgerContext, *, privileged: bool = False, verify_signatures: bool = True
) -> None:
    """Check every modelled rule; raise the failure with the lowest priority number, if any."""
    reject_unsupported(tx)
    failures: list[tuple[int, LedgerRejection]] = []
    failures += _structural(tx, ctx)
    resolved = {ref: lookup(ref) for ref in (*tx.inputs, *tx.reference_inputs)}
    unknown = [ref for ref, out in resolved.items() if out is None]
    if unknown:
        failures.append((4, _failure(
            3117, "Some transaction inputs are unknown or already spent.",
            {"unknownOutputReferences": [out_ref_to_ogmios(r.tx_id, r.index) for r in unknown]},
        )))
    failures += _metadata_failures(tx)
    if not unknown:
        spent = [out for ref in tx.inputs if (out := resolved[ref]) is not None]
        references = [out for ref in tx.reference_inputs if (out := resolved[ref]) is not None]
        failures += _witness_failures(tx, spent, references, privileged=privileged, verify=verify_signatures)
        failures += _size_and_balance(tx, spent, references, ctx)
    else:
        failures += _size_and_balance(tx, None, [], ctx)
    if failures:
        failures.sort(key=lambda item: item[0])
        raise failures[0][1]


def _structural(tx: Tx, ctx: LedgerContext) -> list[tuple[int, LedgerRejection]]:
    failures: list[tuple[int, LedgerRejection]] = []
    conflicting = [ref for ref in tx.inputs if ref in set(tx.reference_inputs)]
    if conflicting:
        failures.append((0, _failure(
            3164, "Some inputs are also used as reference inputs.",
            {"conflictingReferences": [out_ref_to_ogmios(r.tx_id, r.index) for r in conflicting]},
        )))
    if not tx.inputs:
        failures.append((2, _failure(3121, "Transaction must have at least one input, but this one has none.")))
    if (tx.validity_start is not None and ctx.slot < tx.validity_start) or (
        tx.ttl is not None and ctx.slot >= tx.ttl
    ):
        interval: dict[str, int] = {}
        if tx.validity_start is not None:
            interval["invalidBefore"] = tx.validity_start
        if tx.ttl is not None:
            interval["invalidAfter"] = tx.ttl
        failures.append((2, _failure(
            3118, "The transaction is outside of its validity interval.",
            {"validityInterval": interval, "currentSlot": ctx.slot},
        )))
    wrong = [out.address for out in tx.outputs if address_network(out.address_bytes) not in (None, ctx.network_id)]
    if wrong:
        failures.append((2, _failure(
            3124, "Some addresses in the transaction are for another network.",
            {"expectedNetwork": ctx.network, "discriminatedType": "address", "invalidEntities": wrong},
        )))
    elif tx.network_id is not None and tx.network_id != ctx.network_id:
        failures.append((2, _failure(
            3124, "The transaction's network identifier is for another network.",
            {"expectedNetwork": ctx.network, "discriminatedType": "transaction"},
        )))
    too_large = [out for out in tx.outputs if _value_size(out) > ctx.params.max_value_size_bytes]
    if too_large:
        failures.append((2, _failure(
            3120, "Some outputs carry a value that is too large.",
            {"excessivelyLargeOutputs": [output_to_ogmios(out) for out in too_large]},
        )))
    return failures


def _value_size(out: TxOut) -> int:
    if not out.assets:
        return len(cbor2.dumps(out.lovelace))
    multiasset = {bytes.fromhex(p): {bytes.fromhex(n): q for n, q in names.items()} for p, names in out.assets.items()}
    return len(cbor2.dumps([out.lovelace, multiasset]))


def _metadatum_ok(obj: Any) -> bool:
    """Shelley's ``validMetadatum``: byte and text strings of at most 64 bytes, at any depth (Conway sets no
    nesting limit, so this walks without recursion)."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            if len(item) > _MAX_METADATUM_BYTES:
                return False
        elif isinstance(item, str):
            if len(item.encode()) > _MAX_METADATUM_BYTES:
                return False
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif not isinstance(item, int) or isinstance(item, bool):
            return False
    return True


def _metadata_failures(tx: Tx) -> list[tuple[int, LedgerRejection]]:
    declared = tx.auxiliary_data_hash
    if tx.auxiliary_data_raw is None:
        if declared is None:
            return []
        return [(6, _failure(3106, "The transaction declares a metadata hash but carries no metadata.",
                             {"metadata": {"hash": declared}}))]
    computed = hashlib.blake2b(tx.auxiliary_data_raw, digest_size=32).hexdigest()
    if declared is None:
        return [(6, _failure(3105, "The transaction carries metadata but its body declares no metadata hash.",
                             {"metadata": {"hash": computed}}))]
    if declared != computed:
        return [(7, _failure(3107, "The metadata hash in the body does not match the metadata.",
                             {"provided": {"hash": declared}, "computed": {"hash": computed}}))]
    if tx.metadata and not all(_metadatum_ok(v) for v in tx.metadata.values()):
        return [(8, _failure(3108, "Metadata byte and text strings must be at most 64 bytes."))]
    return []


def _witness_failures(
    tx: Tx, spent: list[TxOut], references: list[TxOut], *, privileged: bool, verify: bool = True
) -> list[tuple[int, LedgerRejection]]:
    failures: list[tuple[int, LedgerRejection]] = []
    message = bytes.fromhex(tx.id)
    invalid: list[str] = []
    signers: set[str] = set()
    for vkey, signature in tx.vkey_witnesses:
        try:
            if verify:
                Ed25519PublicKey.from_public_bytes(vkey).verify(signature, message)
        except (InvalidSignature, ValueError):
            invalid.append(vkey.hex())
            continue
        signers.add(hashlib.blake2b(vkey, digest_size=28).hexdigest())
    if invalid:
        failures.append((9, _failure(3100, "Some signatures are invalid.", {"invalidSignatories": invalid})))
    needed_keys: list[str] = []
    needed_scripts: list[str] = []
    for out in spent:
        credential = payment_credential(out.address_bytes)
        if credential is None:
            continue
        target = needed_keys if credential[0] == "key" else needed_scripts
        if credential[1] not in target:
            target.append(credential[1])
    needed_keys += [h for h in tx.required_signers if h not in needed_keys]
    missing = [h for h in needed_keys if h not in signers]
    if missing:
        failures.append((9, _failure(3101, "Some signatures are missing.", {"missingSignatories": missing})))
    if not privileged:
        needed_scripts += [policy for policy in tx.mint if policy not in needed_scripts]
    failures += _script_failures(tx, spent, references, needed_scripts, signers)
    return failures


def _script_failures(
    tx: Tx, spent: list[TxOut], references: list[TxOut], needed: list[str], signers: set[str]
) -> list[tuple[int, LedgerRejection]]:
    provided: dict[str, NativeScript] = {script.hash: script for script in tx.native_scripts}
    available = dict(provided)
    by_reference: set[str] = set()
    for out in (*spent, *references):
        if out.script_ref is not None:
            try:
                ref = parse_script_ref(out.script_ref)
            except (NativeScriptError, ValueError):
                continue
            by_reference.add(ref.hash)
            if ref.native is not None:
                available.setdefault(ref.hash, ref.native)
    failures: list[tuple[int, LedgerRejection]] = []
    missing = [h for h in needed if h not in available]
    if missing:
        failures.append((10, _failure(3102, "Some scripts are missing.", {"missingScripts": missing})))
    failing = [h for h in needed if h in available
               and not available[h].evaluate(signers, tx.validity_start, tx.ttl)]
    if failing:
        failures.append((12, _failure(3103, "Some native scripts failed to validate.",
                                      {"failingNativeScripts": failing})))
    # Cardano.Ledger.Babbage.Rules.Utxow babbageMissingScripts: a witness script is extraneous unless it is
    # needed and not already provided by a reference script (ExtraneousScriptWitnessesUTXOW).
    needed_from_witnesses = {h for h in needed if h not in by_reference}
    extraneous = [h for h in provided if h not in needed_from_witnesses]
    if extraneous:
        failures.append((13, _failure(3104, "Some scripts are not needed by the transaction.",
                                      {"extraneousScripts": extraneous})))
    return failures


def _ref_scripts_size(outs: Iterable[TxOut]) -> int:
    """``txNonDistinctRefScriptsSize``: the scripts of spent and reference inputs, once per input."""
    total = 0
    for out in outs:
        if out.script_ref is not None:
            try:
                total += script_ref_size(out.script_ref)
            except (NativeScriptError, ValueError):
                continue
    return total


def _size_and_balance(
    tx: Tx, spent: list[TxOut] | None, references: list[TxOut], ctx: LedgerContext
) -> list[tuple[int, LedgerRejection]]:
    params = ctx.params
    failures: list[tuple[int, LedgerRejection]] = []
    ref_scripts = _ref_scripts_size((*(spent or []), *references))
    if ref_scripts > MAX_REF_SCRIPTS_BYTES:  # Cardano.Ledger.Conway.Rules.Ledger ConwayTxRefScriptsSizeTooBig
        failures.append((5, _failure(
            3166, "The reference scripts of the transaction are too large.",
            {"measuredReferenceScriptsSize": {"bytes": ref_scripts},
             "maximumReferenceScriptsSize": {"bytes": MAX_REF_SCRIPTS_BYTES}},
        )))
    poor = []
    for out in tx.outputs:
        minimum = params.min_utxo(len(out.raw))
        if out.lovelace < minimum:
            poor.append({"output": output_to_ogmios(out), "minimumRequiredValue": {"ada": {"lovelace": minimum}}})
    if poor:
        failures.append((17, _failure(3125, "Some outputs hold less than the minimum ada.",
                                      {"insufficientlyFundedOutputs": poor})))
    if tx.ledger_size > params.max_transaction_size_bytes:
        failures.append((18, _failure(
            3119, "The transaction is too large.",
            {"measuredTransactionSize": {"bytes": tx.ledger_size},
             "maximumTransactionSize": {"bytes": params.max_transaction_size_bytes}},
        )))
    minimum_fee = params.min_fee(tx.ledger_size, ref_scripts)
    if tx.fee < minimum_fee:
        failures.append((19, _failure(
            3122, "The transaction fee is too small.",
            {"minimumRequiredFee": {"ada": {"lovelace": minimum_fee}}, "providedFee": {"ada": {"lovelace": tx.fee}}},
        )))
    if spent is not None:
        failures += _balance(tx, spent)
    return failures


def _balance(tx: Tx, spent: list[TxOut]) -> list[tuple[int, LedgerRejection]]:
    minted = {p: {n: q for n, q in names.items() if q > 0} for p, names in tx.mint.items()}
    burned = {p: {n: -q for n, q in names.items() if q < 0} for p, names in tx.mint.items()}
    consumed_lovelace = sum(out.lovelace for out in spent)
    consumed_assets = add_assets(*(out.assets for out in spent), minted)
    produced_lovelace = sum(out.lovelace for out in tx.outputs) + tx.fee
    produced_assets = add_assets(*(out.assets for out in tx.outputs), burned)
    if consumed_lovelace == produced_lovelace and consumed_assets == produced_assets:
        return []
    return [(20, _failure(
        3123, "The transaction does not balance: value consumed differs from value produced.",
        {"valueConsumed": value_to_ogmios(consumed_lovelace, consumed_assets),
         "valueProduced": value_to_ogmios(produced_lovelace, produced_assets)},
    ))]

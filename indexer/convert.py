"""Conversions from Ogmios/Kupo JSON and indexer records to the ``creatorpass.v1`` wire types."""

from __future__ import annotations

from typing import Any

import orjson

from common.rpc.creatorpass.v1 import chain_pb2, common_pb2
from indexer.chain import Tip
from indexer.status import TxStatus

__all__ = [
    "indexed_transaction",
    "kupo_utxo",
    "kupo_value",
    "ledger_reason",
    "ogmios_utxo",
    "ogmios_value",
    "protocol_parameters",
    "tip_message",
    "tx_status_message",
]


def _lovelace(value: Any) -> int:
    if isinstance(value, dict):
        return int((value.get("ada") or {}).get("lovelace", 0))
    return int(value or 0)


def ogmios_value(value: dict[str, Any]) -> common_pb2.Value:
    """``{"ada": {"lovelace": n}, policy: {name: qty}}`` -> Value (non-negative quantities)."""
    assets = [
        common_pb2.AssetAmount(asset=common_pb2.AssetId(policy_id=policy, asset_name=name), quantity=int(qty))
        for policy, names in sorted(value.items()) if policy != "ada"
        for name, qty in sorted(names.items()) if int(qty) > 0
    ]
    return common_pb2.Value(lovelace=_lovelace(value), assets=assets)


def kupo_value(value: dict[str, Any]) -> common_pb2.Value:
    """``{"coins": n, "assets": {"policy.name" | "policy": qty}}`` -> Value."""
    assets = []
    for unit, qty in sorted((value.get("assets") or {}).items()):
        policy, _, name = unit.partition(".")
        assets.append(common_pb2.AssetAmount(asset=common_pb2.AssetId(policy_id=policy, asset_name=name),
                                             quantity=int(qty)))
    return common_pb2.Value(lovelace=int(value.get("coins", 0)), assets=assets)


def kupo_utxo(match: dict[str, Any]) -> common_pb2.Utxo:
    inline = match.get("datum_type") == "inline"
    script = match.get("script")
    return common_pb2.Utxo(
        out_ref=common_pb2.OutRef(tx_id=match["transaction_id"], index=int(match["output_index"])),
        address=match["address"],
        value=kupo_value(match.get("value") or {}),
        datum_hash="" if inline else (match.get("datum_hash") or ""),
        inline_datum=bytes.fromhex(match["datum"]) if inline and match.get("datum") else b"",
        script_ref=bytes.fromhex(script["script"]) if isinstance(script, dict) and script.get("script") else b"",
    )


def ogmios_utxo(entry: dict[str, Any]) -> common_pb2.Utxo:
    script = entry.get("script")
    return common_pb2.Utxo(
        out_ref=common_pb2.OutRef(tx_id=entry["transaction"]["id"], index=int(entry["index"])),
        address=entry["address"],
        value=ogmios_value(entry.get("value") or {}),
        datum_hash=entry.get("datumHash") or "",
        inline_datum=bytes.fromhex(entry["datum"]) if entry.get("datum") else b"",
        script_ref=bytes.fromhex(script["cbor"]) if isinstance(script, dict) and script.get("cbor") else b"",
    )


def protocol_parameters(epoch: int, params: dict[str, Any]) -> chain_pb2.ProtocolParameters:
    def size(key: str) -> int:
        return int((params.get(key) or {}).get("bytes", 0))

    version = params.get("version") or {}
    return chain_pb2.ProtocolParameters(
        epoch=epoch,
        min_fee_coefficient=int(params.get("minFeeCoefficient", 0)),
        min_fee_constant=_lovelace(params.get("minFeeConstant")),
        coins_per_utxo_byte=int(params.get("minUtxoDepositCoefficient", 0)),
        max_transaction_size=size("maxTransactionSize"),
        max_value_size=size("maxValueSize"),
        stake_credential_deposit=_lovelace(params.get("stakeCredentialDeposit")),
        stake_pool_deposit=_lovelace(params.get("stakePoolDeposit")),
        collateral_percentage=int(params.get("collateralPercentage", 0)),
        max_collateral_inputs=int(params.get("maxCollateralInputs", 0)),
        max_block_body_size=size("maxBlockBodySize"),
        protocol_major=int(version.get("major", 0)),
        protocol_minor=int(version.get("minor", 0)),
        raw_json=orjson.dumps(params).decode(),
    )


def tip_message(tip: Tip | None) -> common_pb2.Tip:
    return common_pb2.Tip(slot=tip.slot, block_id=tip.id, height=tip.height) if tip else common_pb2.Tip()


def tx_status_message(status: TxStatus, tip: Tip | None) -> chain_pb2.TransactionStatus:
    message = chain_pb2.TransactionStatus(tx_id=status.tx_id, state=status.state, depth=status.depth,
                                          block_height=status.height, tip=tip_message(tip))
    if status.block_id:
        message.block.CopyFrom(common_pb2.Point(slot=status.slot, block_id=status.block_id))
    return message


def indexed_transaction(tx_id: str, detail: bytes | None, status: chain_pb2.TransactionStatus
                        ) -> chain_pb2.IndexedTransaction:
    message = chain_pb2.IndexedTransaction(tx_id=tx_id, status=status)
    if status.HasField("block"):
        message.block.CopyFrom(status.block)
        message.block_height = status.block_height
    if detail is None:
        return message
    doc = orjson.loads(detail)
    message.inputs.extend(common_pb2.OutRef(tx_id=t, index=i) for t, i in doc["inputs"])
    message.outputs.extend(chain_pb2.TxOutput(index=i, address=o["address"], value=ogmios_value(o["value"]))
                           for i, o in enumerate(doc["outputs"]))
    message.mint.extend(
        common_pb2.AssetDelta(asset=common_pb2.AssetId(policy_id=policy, asset_name=name), quantity=int(qty))
        for policy, names in sorted(doc["mint"].items()) for name, qty in sorted(names.items()))
    message.fee = int(doc["fee"])
    message.metadata_json = orjson.dumps(doc["metadata"]).decode() if doc["metadata"] else ""
    message.invalid_before = int(doc["invalid_before"])
    message.invalid_hereafter = int(doc["invalid_hereafter"])
    return message


_REASONS = {
    3005: "the transaction's era does not match the ledger's (around a hard fork)",
    3100: "invalid signatures",
    3101: "missing signatures",
    3102: "missing script witnesses",
    3103: "a native script (e.g. the minting policy or a time lock) is not satisfied",
    3104: "extraneous script witnesses",
    3117: "inputs unknown or already spent",
    3118: "outside the transaction's validity interval",
    3119: "transaction too large",
    3120: "an output value is too large",
    3121: "the transaction has no inputs",
    3122: "fee too small",
    3123: "value not conserved (inputs + mint != outputs + fee)",
    3124: "wrong network",
    3125: "an output holds less than the minimum UTxO value",
    3130: "validity bound is beyond the foreseeable future",
    3997: "the mempool refused the transaction",
}


def ledger_reason(code: int, message: str, data: Any) -> str:
    """A short readable reason for an Ogmios submit error, with the key numbers when there are some."""
    reason = _REASONS.get(code) or (message.split(". ")[0].rstrip(".") if message else f"ledger error {code}")
    if not isinstance(data, dict):
        return reason
    if code == 3122:
        need, got = _lovelace(data.get("minimumRequiredFee")), _lovelace(data.get("providedFee"))
        return f"{reason}: minimum {need} lovelace, provided {got}"
    if code == 3117 and isinstance(data.get("unknownOutputReferences"), list):
        refs = [f"{r['transaction']['id']}#{r['index']}" for r in data["unknownOutputReferences"][:5]
                if isinstance(r, dict) and "transaction" in r]
        return f"{reason}: {', '.join(refs)}" if refs else reason
    if code == 3118 and "currentSlot" in data:
        return f"{reason} (current slot {data['currentSlot']}, interval {data.get('validityInterval')})"
    if code == 3101 and data.get("missingSignatories"):
        return f"{reason}: {', '.join(map(str, data['missingSignatories'][:5]))}"
    if code == 3997 and data.get("error"):
        return f"{reason}: {str(data['error'])[:200]}"
    return reason

"""Serialize a Conway/Babbage transaction (CBOR) into the Ogmios v6 ``Transaction`` JSON object.

Key order and omission rules follow Ogmios' Babbage/Conway encoders: ``id, spends, inputs, references?,
outputs, collaterals?, collateralReturn?, totalCollateral?, certificates?, withdrawals?, mint?,
requiredExtraSignatories?, requiredExtraScripts?, network?, scriptIntegrityHash?, fee, validityInterval,
metadata?, signatories, scripts?, datums?, redeemers?, cbor?``. Sets (inputs, signers, witnesses) are
emitted in the ledger's set order (sorted). Metadata labels carry ``json`` when the metadatum converts
without a schema (no byte strings; map keys are integers or strings), ``cbor`` otherwise. Certificates
other than stake registration, deregistration and delegation are not emitted (the devnet has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2

from devnet.ogmios import cborraw
from devnet.ogmios.encoding import address_to_text, bech32_encode, blake2b_224, blake2b_256, reward_account_to_text
from devnet.ogmios.txparts import (
    PLUTUS_LANGUAGES,
    DecodedOutput,
    TxDecodeError,
    TxParts,
    decode_output,
    decode_output_value,
    metadata_parts,
    metadata_values,
    native_script_json,
    script_hash,
    split_transaction,
    untag,
)

__all__ = [
    "TxDecodeError",
    "TxJsonOptions",
    "decode_output",
    "output_json",
    "script_json",
    "transaction_json",
    "value_json",
]

_PURPOSES = ("spend", "mint", "publish", "withdraw", "vote", "propose")
_WITNESS_PLUTUS_KEYS = {3: 1, 6: 2, 7: 3}
_CERTIFICATE_TYPES = {
    0: "stakeCredentialRegistration",
    7: "stakeCredentialRegistration",
    1: "stakeCredentialDeregistration",
    8: "stakeCredentialDeregistration",
    2: "stakeDelegation",
}


@dataclass(frozen=True, slots=True)
class TxJsonOptions:
    include_transaction_cbor: bool = False
    include_script_cbor: bool = False
    include_metadata_cbor: bool = False


def _out_refs(value: Any) -> list[dict[str, Any]]:
    refs = sorted((bytes(tx_id), int(index)) for tx_id, index in untag(value))
    return [{"transaction": {"id": tx_id.hex()}, "index": index} for tx_id, index in refs]


def _assets(multiasset: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for policy in sorted(multiasset, key=bytes):
        names = multiasset[policy]
        if names:
            out[bytes(policy).hex()] = {bytes(n).hex(): int(names[n]) for n in sorted(names, key=bytes)}
    return out


def value_json(value: Any) -> dict[str, Any]:
    value = untag(value)
    if isinstance(value, int):
        return {"ada": {"lovelace": value}}
    coin, multiasset = value
    out: dict[str, Any] = {"ada": {"lovelace": int(coin)}}
    out.update(_assets(multiasset))
    return out


def script_json(language: int, script_bytes: bytes, include_cbor: bool) -> dict[str, Any]:
    if language == 0:
        out: dict[str, Any] = {"language": "native", "json": native_script_json(cbor2.loads(script_bytes))}
        if include_cbor:
            out["cbor"] = script_bytes.hex()
        return out
    return {"language": PLUTUS_LANGUAGES[language], "cbor": script_bytes.hex()}


def output_json(out: DecodedOutput, include_script_cbor: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {"address": address_to_text(out.address_bytes), "value": value_json(out.value)}
    if out.datum_hash is not None:
        obj["datumHash"] = out.datum_hash.hex()
    elif out.inline_datum is not None:
        obj["datum"] = out.inline_datum.hex()
    if out.script is not None:
        obj["script"] = script_json(out.script[0], out.script[1], include_script_cbor)
    return obj


def _certificates(value: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for cert in untag(value):
        kind = int(cert[0])
        if kind not in _CERTIFICATE_TYPES:
            continue
        credential_kind, credential = cert[1]
        obj: dict[str, Any] = {
            "type": _CERTIFICATE_TYPES[kind],
            "credential": bytes(credential).hex(),
            "from": "verificationKey" if int(credential_kind) == 0 else "script",
        }
        if kind == 2:
            obj["stakePool"] = {"id": bech32_encode("pool", bytes(cert[2]))}
        if kind in (7, 8):
            obj["deposit"] = {"ada": {"lovelace": int(cert[2])}}
        out.append(obj)
    return out


def _metadatum_json(value: Any) -> tuple[bool, Any]:
    """No-schema conversion; (False, None) when not representable (byte strings, exotic keys)."""
    if isinstance(value, bool) or value is None:
        return False, None
    if isinstance(value, int | str):
        return True, value
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            ok, converted = _metadatum_json(item)
            if not ok:
                return False, None
            items.append(converted)
        return True, items
    if isinstance(value, dict):
        obj: dict[str, Any] = {}
        for key, item in value.items():
            ok, converted = _metadatum_json(item)
            if not ok or isinstance(key, bool) or not isinstance(key, int | str):
                return False, None
            obj[str(key)] = converted
        return True, obj
    return False, None


def _metadata_json(hash_value: Any, parts: TxParts, labels: dict[Any, Any], include_cbor: bool) -> dict[str, Any]:
    raw_labels: dict[int, bytes] | None = None
    out: dict[str, Any] = {}
    for label in sorted(labels):
        ok, converted = _metadatum_json(labels[label])
        entry: dict[str, Any] = {}
        if include_cbor or not ok:
            if raw_labels is None:  # the metadatum exactly as sent, located only when it is shown
                raw_labels = {k: raw for k, _, raw in metadata_parts(parts.auxiliary or b"")[0]}
            entry["cbor"] = raw_labels[int(label)].hex()
        if ok:
            entry["json"] = converted
        out[str(label)] = entry
    return {"hash": bytes(hash_value).hex(), "labels": out}


def _body_fields(body: dict[Any, Any], opts: TxJsonOptions) -> dict[str, Any]:
    obj: dict[str, Any] = {"inputs": _out_refs(body[0]) if 0 in body else []}
    if 18 in body and (references := _out_refs(body[18])):
        obj["references"] = references
    outputs = untag(body[1]) if 1 in body else []
    obj["outputs"] = [output_json(decode_output_value(o), opts.include_script_cbor) for o in outputs]
    if 13 in body and (collaterals := _out_refs(body[13])):
        obj["collaterals"] = collaterals
    if 16 in body:
        obj["collateralReturn"] = output_json(decode_output_value(body[16]), opts.include_script_cbor)
    if 17 in body:
        obj["totalCollateral"] = {"ada": {"lovelace": int(body[17])}}
    if 4 in body and (certificates := _certificates(body[4])):
        obj["certificates"] = certificates
    if 5 in body and (withdrawals := body[5]):
        obj["withdrawals"] = {
            reward_account_to_text(bytes(account)): {"ada": {"lovelace": int(amount)}}
            for account, amount in sorted(withdrawals.items(), key=lambda kv: bytes(kv[0]))
        }
    if 9 in body and (mint := _assets(body[9])):
        obj["mint"] = mint
    if 14 in body and (signers := untag(body[14])):
        obj["requiredExtraSignatories"] = sorted(bytes(s).hex() for s in signers)
    return obj


def _redeemers(value: Any, raw: bytes) -> list[dict[str, Any]]:
    entries: list[tuple[int, int, bytes, Any]] = []
    if isinstance(value, dict):  # Conway map {[tag, index]: [data, ex_units]}
        for key, _, pair_raw in cborraw.map_entries(raw):
            (_, data_raw), (units, _) = cborraw.array_entries(pair_raw)
            entries.append((int(key[0]), int(key[1]), data_raw, units))
    else:
        for _, item_raw in cborraw.array_entries(raw):
            (tag, _), (index, _), (_, data_raw), (units, _) = cborraw.array_entries(item_raw)
            entries.append((int(tag), int(index), data_raw, units))
    return [
        {
            "validator": {"purpose": _PURPOSES[tag], "index": index},
            "redeemer": data.hex(),
            "executionUnits": {"memory": int(units[0]), "cpu": int(units[1])},
        }
        for tag, index, data, units in sorted(entries, key=lambda e: (e[0], e[1]))
    ]


def _signatories(witnesses: dict[Any, Any]) -> list[dict[str, Any]]:
    keyed = [
        (blake2b_224(bytes(vkey)), {"key": bytes(vkey).hex(), "signature": bytes(signature).hex()})
        for vkey, signature in (untag(witnesses[0]) if 0 in witnesses else [])
    ]
    signatories = [signatory for _, signatory in sorted(keyed, key=lambda pair: pair[0])]
    for boot in untag(witnesses[2]) if 2 in witnesses else []:
        signatories.append(
            {
                "key": bytes(boot[0]).hex(),
                "signature": bytes(boot[1]).hex(),
                "chainCode": bytes(boot[2]).hex(),
                "addressAttributes": bytes(boot[3]).hex(),
            }
        )
    return signatories


def _witness_fields(parts: TxParts, aux_scripts: list[tuple[int, bytes]], opts: TxJsonOptions) -> dict[str, Any]:
    witnesses = parts.witnesses
    obj: dict[str, Any] = {"signatories": _signatories(witnesses)}
    scripts = list(aux_scripts)
    if 1 in witnesses:
        scripts += [(0, raw) for _, raw in cborraw.array_entries(parts.witness_raw(1))]
    for key, language in _WITNESS_PLUTUS_KEYS.items():
        if key in witnesses:
            scripts += [(language, bytes(script)) for script in untag(witnesses[key])]
    if scripts:
        by_hash = {script_hash(lang, raw): script_json(lang, raw, opts.include_script_cbor) for lang, raw in scripts}
        obj["scripts"] = dict(sorted(by_hash.items()))
    if 4 in witnesses and (datums := cborraw.array_entries(parts.witness_raw(4))):
        obj["datums"] = dict(sorted((blake2b_256(raw).hex(), raw.hex()) for _, raw in datums))
    if 5 in witnesses and (redeemers := _redeemers(witnesses[5], parts.witness_raw(5))):
        obj["redeemers"] = redeemers
    return obj


def _assemble(tx_cbor: bytes, opts: TxJsonOptions, tx_id: str | None) -> dict[str, Any]:
    parts = split_transaction(tx_cbor, trusted=tx_id is not None)
    body = parts.body
    obj: dict[str, Any] = {
        "id": tx_id or blake2b_256(parts.body_raw).hex(),
        "spends": "inputs" if parts.is_valid else "collaterals",
    }
    obj.update(_body_fields(body, opts))
    labels: dict[Any, Any] = {}
    aux_scripts: list[tuple[int, bytes]] = []
    if parts.auxiliary_value is not None:
        labels, has_scripts = metadata_values(parts.auxiliary_value)
        aux_scripts = metadata_parts(parts.auxiliary or b"")[1] if has_scripts else []
        if aux_scripts:
            obj["requiredExtraScripts"] = sorted({script_hash(lang, raw) for lang, raw in aux_scripts})
    if 15 in body:
        obj["network"] = "mainnet" if body[15] == 1 else "testnet"
    if 11 in body:
        obj["scriptIntegrityHash"] = bytes(body[11]).hex()
    obj["fee"] = {"ada": {"lovelace": int(body[2]) if 2 in body else 0}}
    interval: dict[str, int] = {}
    if 8 in body and body[8] is not None:
        interval["invalidBefore"] = int(body[8])
    if 3 in body and body[3] is not None:
        interval["invalidAfter"] = int(body[3])
    obj["validityInterval"] = interval
    if parts.auxiliary_value is not None and 7 in body:
        obj["metadata"] = _metadata_json(body[7], parts, labels, opts.include_metadata_cbor)
    obj.update(_witness_fields(parts, aux_scripts, opts))
    if opts.include_transaction_cbor:
        obj["cbor"] = tx_cbor.hex()
    return obj


def transaction_json(
    tx_cbor: bytes, opts: TxJsonOptions = TxJsonOptions(), *, tx_id: str | None = None
) -> dict[str, Any]:
    """The Ogmios ``Transaction`` object for a serialized transaction; TxDecodeError if malformed.

    Pass ``tx_id`` for a transaction the ledger already accepted (a block's or the mempool's): the id is
    trusted and the decoding takes the fast path.
    """
    try:
        return _assemble(tx_cbor, opts, tx_id)
    except TxDecodeError:
        raise
    except (
        cborraw.CborError,
        cbor2.CBORDecodeError,
        KeyError,
        IndexError,
        TypeError,
        ValueError,
        AttributeError,
    ) as exc:
        raise TxDecodeError(f"malformed transaction: {exc}") from exc

"""Serialize a Conway/Babbage transaction (CBOR) into the Ogmios v6 ``Transaction`` JSON object.

Key order and omission rules follow Ogmios' Babbage/Conway encoders: ``id, spends, inputs, references?,
outputs, collaterals?, collateralReturn?, totalCollateral?, certificates?, withdrawals?, mint?,
requiredExtraSignatories?, requiredExtraScripts?, network?, scriptIntegrityHash?, fee, validityInterval,
metadata?, signatories, scripts?, datums?, redeemers?, cbor?``. Sets (inputs, signers, witnesses) are
emitted in the ledger's set order (sorted). Metadata labels carry ``json`` when the metadatum is
convertible without a schema (no byte strings, map keys are ints or strings), ``cbor`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2

from devnet.ogmios import cborraw
from devnet.ogmios.encoding import (
    address_to_text,
    bech32_encode,
    blake2b_224,
    blake2b_256,
    reward_account_to_text,
)

__all__ = [
    "TxDecodeError",
    "TxJsonOptions",
    "decode_output",
    "native_script_json",
    "output_json",
    "script_hash",
    "script_json",
    "split_transaction",
    "transaction_json",
]

_PURPOSES = ("spend", "mint", "publish", "withdraw", "vote", "propose")
_PLUTUS_LANGUAGES = {1: "plutus:v1", 2: "plutus:v2", 3: "plutus:v3"}
_WITNESS_PLUTUS_KEYS = {3: 1, 6: 2, 7: 3}


class TxDecodeError(ValueError):
    """The bytes are not a transaction this serializer understands."""


@dataclass(frozen=True, slots=True)
class TxJsonOptions:
    include_transaction_cbor: bool = False
    include_script_cbor: bool = False
    include_metadata_cbor: bool = False


@dataclass(frozen=True, slots=True)
class TxSpans:
    """Raw sub-structures of a transaction ``[body, witnesses, is_valid, auxiliary_data]``."""

    body: bytes
    witnesses: bytes
    is_valid: bool
    auxiliary: bytes | None


def split_transaction(tx_cbor: bytes) -> TxSpans:
    try:
        items = cborraw.array_items(tx_cbor, 0)
        if len(items) not in (3, 4) or cborraw.item_end(tx_cbor, 0) != len(tx_cbor):
            raise TxDecodeError("a transaction is an array of 3 or 4 items")
        raw = [tx_cbor[start:end] for start, end in items]
    except cborraw.CborError as exc:
        raise TxDecodeError(str(exc)) from exc
    is_valid = True
    auxiliary: bytes | None = raw[-1]
    if len(raw) == 4:
        is_valid = raw[2] != b"\xf4"
    if auxiliary == b"\xf6":
        auxiliary = None
    return TxSpans(body=raw[0], witnesses=raw[1], is_valid=is_valid, auxiliary=auxiliary)


def _raw_map(data: bytes) -> dict[Any, bytes]:
    """Decode a map's keys and keep each value's original bytes."""
    out: dict[Any, bytes] = {}
    for (ks, ke), (vs, ve) in cborraw.map_items(data, 0):
        out[cbor2.loads(data[ks:ke])] = data[vs:ve]
    return out


def _raw_list(data: bytes) -> list[bytes]:
    return [data[s:e] for s, e in cborraw.array_items(data, 0)]


def _untag(value: Any) -> Any:
    while isinstance(value, cbor2.CBORTag):
        value = value.value
    return value


def _out_ref(item: Any) -> dict[str, Any]:
    tx_id, index = item
    return {"transaction": {"id": bytes(tx_id).hex()}, "index": int(index)}


def _out_refs(raw: bytes) -> list[dict[str, Any]]:
    items = sorted((bytes(i[0]), int(i[1])) for i in _untag(cbor2.loads(raw)))
    return [_out_ref(i) for i in items]


def _assets(multiasset: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for policy in sorted(multiasset, key=bytes):
        names = multiasset[policy]
        out[bytes(policy).hex()] = {bytes(n).hex(): int(names[n]) for n in sorted(names, key=bytes)}
    return out


def value_json(value: Any) -> dict[str, Any]:
    value = _untag(value)
    if isinstance(value, int):
        return {"ada": {"lovelace": value}}
    coin, multiasset = value
    out: dict[str, Any] = {"ada": {"lovelace": int(coin)}}
    for policy, names in _assets(multiasset).items():
        if names:
            out[policy] = names
    return out


def native_script_json(script: Any) -> dict[str, Any]:
    kind = int(script[0])
    if kind == 0:
        return {"clause": "signature", "from": bytes(script[1]).hex()}
    if kind in (1, 2):
        return {"clause": "all" if kind == 1 else "any", "from": [native_script_json(s) for s in script[1]]}
    if kind == 3:
        return {
            "clause": "some",
            "atLeast": int(script[1]),
            "from": [native_script_json(s) for s in script[2]],
        }
    if kind == 4:
        return {"clause": "after", "slot": int(script[1])}
    if kind == 5:
        return {"clause": "before", "slot": int(script[1])}
    raise TxDecodeError(f"unknown native script constructor {kind}")


def script_hash(language: int, script_bytes: bytes) -> str:
    """``language`` 0 = native (``script_bytes`` = script CBOR), 1..3 = Plutus (raw flat-in-CBOR bytes)."""
    return blake2b_224(bytes([language]) + script_bytes).hex()


def script_json(language: int, script_bytes: bytes, include_cbor: bool) -> dict[str, Any]:
    if language == 0:
        out: dict[str, Any] = {"language": "native", "json": native_script_json(cbor2.loads(script_bytes))}
        if include_cbor:
            out["cbor"] = script_bytes.hex()
        return out
    return {"language": _PLUTUS_LANGUAGES[language], "cbor": script_bytes.hex()}


def _script_ref(raw_tag24: bytes) -> tuple[int, bytes]:
    """Decode ``#6.24(bytes .cbor [type, script])`` into (language, script bytes)."""
    inner = _untag(cbor2.loads(raw_tag24))
    items = cborraw.array_items(inner, 0)
    language = cbor2.loads(inner[items[0][0] : items[0][1]])
    script_raw = inner[items[1][0] : items[1][1]]
    if language == 0:
        return 0, script_raw
    return int(language), bytes(cbor2.loads(script_raw))


@dataclass(frozen=True, slots=True)
class DecodedOutput:
    address_bytes: bytes
    value: Any
    datum_hash: bytes | None
    inline_datum: bytes | None
    script: tuple[int, bytes] | None


def decode_output(raw: bytes) -> DecodedOutput:
    head = raw[0] >> 5
    if head == 4:  # legacy [address, value, datum_hash?]
        items = _raw_list(raw)
        datum_hash = bytes(cbor2.loads(items[2])) if len(items) > 2 else None
        return DecodedOutput(bytes(cbor2.loads(items[0])), cbor2.loads(items[1]), datum_hash, None, None)
    fields = _raw_map(raw)
    datum_hash = inline = None
    if 2 in fields:
        option = _raw_list(fields[2])
        if cbor2.loads(option[0]) == 0:
            datum_hash = bytes(cbor2.loads(option[1]))
        else:
            inline = bytes(_untag(cbor2.loads(option[1])))
    script = _script_ref(fields[3]) if 3 in fields else None
    return DecodedOutput(bytes(cbor2.loads(fields[0])), cbor2.loads(fields[1]), datum_hash, inline, script)


def output_json(out: DecodedOutput, include_script_cbor: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {"address": address_to_text(out.address_bytes), "value": value_json(out.value)}
    if out.datum_hash is not None:
        obj["datumHash"] = out.datum_hash.hex()
    elif out.inline_datum is not None:
        obj["datum"] = out.inline_datum.hex()
    if out.script is not None:
        obj["script"] = script_json(out.script[0], out.script[1], include_script_cbor)
    return obj


def _credential(cred: Any) -> tuple[str, str]:
    return ("verificationKey" if int(cred[0]) == 0 else "script"), bytes(cred[1]).hex()


def _certificates(raw: bytes) -> list[dict[str, Any]]:
    """Stake registration / deregistration / delegation (Shelley and Conway forms); others are skipped."""
    out: list[dict[str, Any]] = []
    for cert in _untag(cbor2.loads(raw)):
        kind = int(cert[0])
        if kind not in (0, 1, 2, 7, 8):
            continue
        origin, credential = _credential(cert[1])
        name = {0: "stakeCredentialRegistration", 7: "stakeCredentialRegistration", 2: "stakeDelegation"}
        obj: dict[str, Any] = {
            "type": name.get(kind, "stakeCredentialDeregistration"),
            "credential": credential,
            "from": origin,
        }
        if kind == 2:
            obj["stakePool"] = {"id": _pool_id(bytes(cert[2]))}
        if kind in (7, 8):
            obj["deposit"] = {"ada": {"lovelace": int(cert[2])}}
        out.append(obj)
    return out


def _pool_id(raw: bytes) -> str:
    return bech32_encode("pool", raw)


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
            if isinstance(key, bool) or not isinstance(key, int | str):
                return False, None
            ok, converted = _metadatum_json(item)
            if not ok:
                return False, None
            obj[str(key)] = converted
        return True, obj
    return False, None


def metadata_labels(aux_raw: bytes) -> tuple[dict[int, bytes], list[tuple[int, bytes]]]:
    """Split auxiliary data into {label: raw metadatum} and its scripts [(language, bytes)]."""
    start = aux_raw
    head = start[0]
    scripts: list[tuple[int, bytes]] = []
    if head >> 5 == 6:  # Alonzo+ #6.259({0: metadata, 1: native, 2..4: plutus})
        fields = _raw_map(bytes(start[cborraw.read_head(start, 0)[2] :]))
        metadata_raw = fields.get(0)
        for key, language in ((1, 0), (2, 1), (3, 2), (4, 3)):
            for item in _raw_list(fields[key]) if key in fields else []:
                scripts.append((language, item if language == 0 else bytes(cbor2.loads(item))))
    elif head >> 5 == 4:  # Allegra [metadata, [native scripts]]
        parts = _raw_list(start)
        metadata_raw = parts[0]
        scripts.extend((0, item) for item in (_raw_list(parts[1]) if len(parts) > 1 else []))
    else:
        metadata_raw = start
    labels = {int(k): v for k, v in _raw_map(metadata_raw).items()} if metadata_raw else {}
    return labels, scripts


def _metadata_json(body: dict[Any, bytes], aux_raw: bytes, include_cbor: bool) -> dict[str, Any] | None:
    if 7 not in body:
        return None
    labels_raw, _ = metadata_labels(aux_raw)
    labels: dict[str, Any] = {}
    for label in sorted(labels_raw):
        raw = labels_raw[label]
        ok, converted = _metadatum_json(cbor2.loads(raw))
        entry: dict[str, Any] = {}
        if include_cbor or not ok:
            entry["cbor"] = raw.hex()
        if ok:
            entry["json"] = converted
        labels[str(label)] = entry
    return {"hash": bytes(cbor2.loads(body[7])).hex(), "labels": labels}


def _body_fields(body: dict[Any, bytes], opts: TxJsonOptions) -> dict[str, Any]:
    obj: dict[str, Any] = {"inputs": _out_refs(body[0]) if 0 in body else []}
    if 18 in body and (refs := _out_refs(body[18])):
        obj["references"] = refs
    outputs = _raw_list(body[1]) if 1 in body else []
    obj["outputs"] = [output_json(decode_output(o), opts.include_script_cbor) for o in outputs]
    if 13 in body and (collaterals := _out_refs(body[13])):
        obj["collaterals"] = collaterals
    if 16 in body:
        obj["collateralReturn"] = output_json(decode_output(body[16]), opts.include_script_cbor)
    if 17 in body:
        obj["totalCollateral"] = {"ada": {"lovelace": int(cbor2.loads(body[17]))}}
    if 4 in body and (certificates := _certificates(body[4])):
        obj["certificates"] = certificates
    if 5 in body and (withdrawals := cbor2.loads(body[5])):
        obj["withdrawals"] = {
            reward_account_to_text(bytes(k)): {"ada": {"lovelace": int(v)}}
            for k, v in sorted(withdrawals.items(), key=lambda kv: bytes(kv[0]))
        }
    if 9 in body and (mint := _assets(cbor2.loads(body[9]))):
        obj["mint"] = {policy: names for policy, names in mint.items() if names}
    if 14 in body and (signers := _untag(cbor2.loads(body[14]))):
        obj["requiredExtraSignatories"] = sorted(bytes(s).hex() for s in signers)
    return obj


def _witness_fields(
    witnesses: dict[Any, bytes], aux_scripts: list[tuple[int, bytes]], opts: TxJsonOptions
) -> dict[str, Any]:
    signatories = []
    for vkey, signature in _untag(cbor2.loads(witnesses[0])) if 0 in witnesses else []:
        signatories.append((blake2b_224(bytes(vkey)), {"key": bytes(vkey).hex(), "signature": bytes(signature).hex()}))
    obj: dict[str, Any] = {"signatories": [s for _, s in sorted(signatories, key=lambda s: s[0])]}
    for boot in _untag(cbor2.loads(witnesses[2])) if 2 in witnesses else []:
        obj["signatories"].append(
            {
                "key": bytes(boot[0]).hex(),
                "signature": bytes(boot[1]).hex(),
                "chainCode": bytes(boot[2]).hex(),
                "addressAttributes": bytes(boot[3]).hex(),
            }
        )
    scripts: list[tuple[int, bytes]] = list(aux_scripts)
    if 1 in witnesses:
        scripts.extend((0, raw) for raw in _raw_list(witnesses[1]))
    for key, language in _WITNESS_PLUTUS_KEYS.items():
        if key in witnesses:
            scripts.extend((language, bytes(s)) for s in _untag(cbor2.loads(witnesses[key])))
    if scripts:
        by_hash = {script_hash(lang, raw): script_json(lang, raw, opts.include_script_cbor) for lang, raw in scripts}
        obj["scripts"] = dict(sorted(by_hash.items()))
    if 4 in witnesses and (datums := _raw_list(witnesses[4])):
        obj["datums"] = dict(sorted((blake2b_256(d).hex(), d.hex()) for d in datums))
    if 5 in witnesses and (redeemers := _redeemers(witnesses[5])):
        obj["redeemers"] = redeemers
    return obj


def _redeemers(raw: bytes) -> list[dict[str, Any]]:
    entries: list[tuple[int, int, bytes, Any]] = []
    if raw[0] >> 5 == 5:  # Conway map {[tag, index]: [data, ex_units]}
        for (ks, ke), (vs, ve) in cborraw.map_items(raw, 0):
            tag, index = cbor2.loads(raw[ks:ke])
            data_raw, units_raw = _raw_list(raw[vs:ve])
            entries.append((int(tag), int(index), data_raw, cbor2.loads(units_raw)))
    else:
        for item in _raw_list(raw):
            parts = _raw_list(item)
            units = cbor2.loads(parts[3])
            entries.append((int(cbor2.loads(parts[0])), int(cbor2.loads(parts[1])), parts[2], units))
    return [
        {
            "validator": {"purpose": _PURPOSES[tag], "index": index},
            "redeemer": data.hex(),
            "executionUnits": {"memory": int(units[0]), "cpu": int(units[1])},
        }
        for tag, index, data, units in sorted(entries, key=lambda e: (e[0], e[1]))
    ]


def transaction_json(tx_cbor: bytes, opts: TxJsonOptions = TxJsonOptions()) -> dict[str, Any]:
    """The Ogmios ``Transaction`` object for a serialized transaction."""
    spans = split_transaction(tx_cbor)
    try:
        body = _raw_map(spans.body)
        witnesses = _raw_map(spans.witnesses)
        obj: dict[str, Any] = {
            "id": blake2b_256(spans.body).hex(),
            "spends": "inputs" if spans.is_valid else "collaterals",
        }
        obj.update(_body_fields(body, opts))
        labels_scripts: list[tuple[int, bytes]] = []
        if spans.auxiliary is not None:
            labels_scripts = metadata_labels(spans.auxiliary)[1]
            extra = sorted({script_hash(lang, raw) for lang, raw in labels_scripts})
            if extra:
                obj["requiredExtraScripts"] = extra
        if 15 in body:
            obj["network"] = "mainnet" if cbor2.loads(body[15]) == 1 else "testnet"
        if 11 in body:
            obj["scriptIntegrityHash"] = bytes(cbor2.loads(body[11])).hex()
        obj["fee"] = {"ada": {"lovelace": int(cbor2.loads(body[2])) if 2 in body else 0}}
        interval: dict[str, int] = {}
        if 8 in body and (start := cbor2.loads(body[8])) is not None:
            interval["invalidBefore"] = int(start)
        if 3 in body and (ttl := cbor2.loads(body[3])) is not None:
            interval["invalidAfter"] = int(ttl)
        obj["validityInterval"] = interval
        if spans.auxiliary is not None and (
            metadata := _metadata_json(body, spans.auxiliary, opts.include_metadata_cbor)
        ):
            obj["metadata"] = metadata
        obj.update(_witness_fields(witnesses, labels_scripts, opts))
    except (cborraw.CborError, cbor2.CBORDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, TxDecodeError):
            raise
        raise TxDecodeError(f"malformed transaction: {exc}") from exc
    if opts.include_transaction_cbor:
        obj["cbor"] = tx_cbor.hex()
    return obj

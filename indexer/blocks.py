"""Schema-directed decoding of ``nextBlock`` answers, the chain follower's hot path.

A block answer is mostly things the indexer never reads (issuer keys, VRF proofs, witnesses, scripts,
datums). Decoding it into a few msgspec Structs skips all of that without building Python objects for
it, and leaves output values, mints, fees, metadata and validity intervals as raw JSON spans that are
parsed only for the transactions that matter. About three times cheaper than a full ``json.loads``.

Anything the schema cannot take (an unforeseen shape) falls back to a full parse and the dict-based
:func:`indexer.chain.extract_block`, so an odd block costs time, never correctness.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from indexer.chain import BlockRecord, Relevance, extract_block

__all__ = ["NextBlock", "decode_next_block", "extract"]

_NULL = msgspec.Raw(b"null")


class _TxRef(msgspec.Struct):
    id: str


class _OutRef(msgspec.Struct):
    transaction: _TxRef
    index: int


class _Output(msgspec.Struct):
    address: str
    value: msgspec.Raw = _NULL


class _Tx(msgspec.Struct):
    id: str
    spends: str = "inputs"
    inputs: list[_OutRef] = []
    outputs: list[_Output] = []
    collaterals: list[_OutRef] = []
    collateralReturn: _Output | None = None
    mint: dict[str, msgspec.Raw] = {}
    fee: msgspec.Raw = _NULL
    metadata: msgspec.Raw = _NULL
    validityInterval: msgspec.Raw = _NULL


class _Block(msgspec.Struct):
    id: str
    height: int
    slot: int = -1  # Byron epoch-boundary blocks carry none
    transactions: list[_Tx] = []


class NextBlock(msgspec.Struct):
    """A ``nextBlock`` result: ``block`` when forward, ``point`` when backward; ``tip`` as Ogmios sent it."""

    direction: str
    tip: Any = None
    block: _Block | None = None
    point: Any = None
    raw_block: Any = None  # set only by the fallback path: the block as plain JSON objects


_DECODER = msgspec.json.Decoder(NextBlock)


def decode_next_block(raw: bytes | msgspec.Raw) -> NextBlock:
    """Typed decode of a nextBlock result; falls back to a full parse when the schema does not fit."""
    try:
        return _DECODER.decode(raw)
    except msgspec.ValidationError:
        result = msgspec.json.decode(raw)
        return NextBlock(result["direction"], result.get("tip"), None, result.get("point"), result.get("block"))


def _json(raw: msgspec.Raw) -> Any:
    return msgspec.json.decode(raw)


def _detail(tx: _Tx, outputs: list[_Output]) -> bytes:
    validity = _json(tx.validityInterval) or {}
    metadata = _json(tx.metadata)
    doc = {
        "inputs": [[ref.transaction.id, ref.index] for ref in tx.inputs],
        "outputs": [{"address": out.address, "value": _json(out.value) or {}} for out in outputs],
        "mint": {policy: _json(names) for policy, names in tx.mint.items()},
        "fee": ((_json(tx.fee) or {}).get("ada") or {}).get("lovelace", 0),
        "metadata": metadata.get("labels") if isinstance(metadata, dict) else None,
        "invalid_before": validity.get("invalidBefore") or 0,
        "invalid_hereafter": validity.get("invalidAfter") or 0,
        "failed": tx.spends == "collaterals",
    }
    return orjson.dumps(doc)


def extract(result: NextBlock, relevance: Relevance) -> BlockRecord:
    """Same record as :func:`indexer.chain.extract_block`, from the typed decode."""
    block = result.block
    if block is None:
        return extract_block(result.raw_block, relevance)
    record = BlockRecord(block.height, block.slot, block.id)
    addresses, policy_id = relevance.addresses, relevance.policy_id
    unspent, submitted = relevance.unspent, relevance.submitted
    tx_ids, created = record.tx_ids, record.created
    for tx in block.transactions:
        tx_id = tx.id
        tx_ids.append(tx_id)
        matters = tx_id in submitted or bool(policy_id and policy_id in tx.mint)
        failed = tx.spends == "collaterals"
        if unspent:
            for ref in tx.collaterals if failed else tx.inputs:
                key = (ref.transaction.id, ref.index)
                if key in unspent:
                    unspent.discard(key)
                    record.spent.append(key)
                    matters = True
        outputs = ([tx.collateralReturn] if tx.collateralReturn else []) if failed else tx.outputs
        if addresses:
            first_index = len(tx.outputs) if failed else 0  # a collateral return's index follows the outputs
            for index, out in enumerate(outputs, first_index):
                if out.address in addresses:
                    key = (tx_id, index)
                    unspent.add(key)
                    created.append(key)
                    matters = True
        if matters:
            record.details.append((tx_id, _detail(tx, outputs)))
    return record

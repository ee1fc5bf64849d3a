"""Ogmios v6 ``Block<Praos>`` JSON for devnet blocks, serialized once per block and cached.

The devnet has no real block header, so the header-only fields (operational certificate, KES key, VRF
leader value) are filled deterministically from the block id and issuer key: same block, same bytes.
Field order follows Ogmios' Babbage/Conway header encoder (``type, era, id, size, height, slot, ancestor,
issuer, protocol, transactions``); Praos headers carry no ``nonce``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from typing import Any, Protocol

from devnet.ogmios.encoding import dumps
from devnet.ogmios.txjson import TxJsonOptions, transaction_json

__all__ = ["BlockJsonCache", "BlockLike", "block_json", "warm_cache"]

_KES_PERIOD_SLOTS = 129600


class TxLike(Protocol):
    id: str
    cbor: bytes


class BlockLike(Protocol):
    height: int
    slot: int
    id: str
    ancestor: str
    transactions: list[Any]
    size: int
    issuer_vkey: str
    vrf_vkey: str


def _digest(*parts: str | bytes, size: int) -> str:
    h = hashlib.blake2b(digest_size=size)
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()


def block_json(
    block: BlockLike, protocol_version: dict[str, int], opts: TxJsonOptions = TxJsonOptions()
) -> dict[str, Any]:
    vrf_output = _digest("leader", block.id, size=64)
    return {
        "type": "praos",
        "era": "conway",
        "id": block.id,
        "size": {"bytes": block.size},
        "height": block.height,
        "slot": block.slot,
        "ancestor": block.ancestor,
        "issuer": {
            "verificationKey": block.issuer_vkey,
            "vrfVerificationKey": block.vrf_vkey,
            "operationalCertificate": {
                "count": 0,
                "sigma": _digest("ocert", block.issuer_vkey, size=64),
                "kes": {
                    "period": block.slot // _KES_PERIOD_SLOTS,
                    "verificationKey": _digest("kes", block.issuer_vkey, size=32),
                },
            },
            "leaderValue": {"output": vrf_output, "proof": _digest("proof", block.id, size=64) + vrf_output[:32]},
        },
        "protocol": {"version": dict(protocol_version)},
        "transactions": [transaction_json(tx.cbor, opts, tx_id=tx.id) for tx in block.transactions],
    }


class BlockJsonCache:
    """Block id → serialized block JSON bytes (bounded LRU; a block's JSON never changes)."""

    def __init__(self, opts: TxJsonOptions, max_blocks: int = 20_000) -> None:
        self.opts = opts
        self.max_blocks = max_blocks
        self._cache: OrderedDict[str, bytes] = OrderedDict()

    def __contains__(self, block_id: str) -> bool:
        return block_id in self._cache

    def get(self, block: BlockLike, protocol_version: dict[str, int]) -> bytes:
        cached = self._cache.get(block.id)
        if cached is not None:
            return cached
        encoded = dumps(block_json(block, protocol_version, self.opts))
        self._cache[block.id] = encoded
        if len(self._cache) > self.max_blocks:
            self._cache.popitem(last=False)
        return encoded


async def warm_cache(chain: Any, cache: BlockJsonCache, slice_s: float = 0.005) -> None:
    """Serialize new blocks in the background (oldest first) so chain-sync finds them ready.

    Runs forever on the server's loop, yielding every ``slice_s`` of work; after a rollback it resumes
    from the first block it has not serialized.
    """
    next_height = 1
    while True:
        version = chain.version
        next_height = min(next_height, len(chain.blocks) + 1)
        while next_height > 1 and chain.blocks[next_height - 2].id not in cache:
            next_height -= 1
        started = time.monotonic()
        while next_height <= len(chain.blocks):
            block = chain.blocks[next_height - 1]
            params = chain.params
            cache.get(block, {"major": int(params.protocol_major), "minor": int(params.protocol_minor)})
            next_height += 1
            if time.monotonic() - started > slice_s:
                await asyncio.sleep(0)
                if chain.version != version:
                    break
                started = time.monotonic()
        else:
            await chain.wait_for_change(version)

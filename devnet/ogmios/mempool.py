"""Ogmios mempool monitoring (local-tx-monitor): a per-connection snapshot of the devnet mempool.

``acquireMempool`` returns at once the first time; while a snapshot is held it waits until the mempool
differs from it. ``nextTransaction`` walks the snapshot once; ``hasTransaction`` and ``sizeOfMempool``
answer from it; every call but ``acquireMempool`` needs a snapshot (error 4000).
"""

from __future__ import annotations

from typing import Any, Final

from devnet.ogmios.encoding import is_hex
from devnet.ogmios.rpc import INVALID_PARAMS, RpcFault
from devnet.ogmios.txjson import TxJsonOptions, transaction_json

__all__ = ["MempoolMonitor"]

_MUST_ACQUIRE: Final = "You must acquire a mempool snapshot prior to accessing it."


class MempoolMonitor:
    def __init__(self, chain: Any, tx_opts: TxJsonOptions) -> None:
        self.chain = chain
        self.tx_opts = tx_opts
        self._snapshot: list[Any] | None = None
        self._ids: tuple[str, ...] = ()
        self._position = 0
        self._slot = 0

    def _take(self) -> None:
        self._snapshot = list(self.chain.mempool)
        self._ids = tuple(tx.id for tx in self._snapshot)
        self._position = 0
        self._slot = self.chain.mempool_slot()  # the snapshot's slot: the tip's + 1, as the node's

    def _require(self) -> list[Any]:
        if self._snapshot is None:
            raise RpcFault(4000, _MUST_ACQUIRE)
        return self._snapshot

    async def acquire(self, params: Any) -> dict[str, Any]:
        _no_params(params)
        if self._snapshot is not None:
            while True:
                version = self.chain.version
                if tuple(tx.id for tx in self.chain.mempool) != self._ids:
                    break
                await self.chain.wait_for_change(version)
        self._take()
        return {"acquired": "mempool", "slot": self._slot}

    def next_transaction(self, params: Any) -> dict[str, Any]:
        full = False
        if params is not None:
            if not isinstance(params, dict) or set(params) - {"fields"} or params.get("fields", "all") != "all":
                raise RpcFault(INVALID_PARAMS, "Invalid request: 'fields' may only be \"all\".")
            full = "fields" in params
        snapshot = self._require()
        if self._position >= len(snapshot):
            return {"transaction": None}
        tx = snapshot[self._position]
        self._position += 1
        if full:
            return {"transaction": transaction_json(tx.cbor, self.tx_opts, tx_id=tx.id)}
        return {"transaction": {"id": tx.id}}

    def has_transaction(self, params: Any) -> bool:
        if not isinstance(params, dict) or set(params) != {"id"} or not is_hex(params["id"], 64):
            raise RpcFault(INVALID_PARAMS, "Invalid request: expected 'params.id', a transaction id (64 hex).")
        self._require()
        return params["id"] in self._ids

    def size(self, params: Any) -> dict[str, Any]:
        _no_params(params)
        snapshot = self._require()
        return {
            "maxCapacity": {"bytes": self.chain.mempool_capacity_bytes()},
            "currentSize": {"bytes": sum(tx.size for tx in snapshot)},
            "transactions": {"count": len(snapshot)},
        }

    def release(self, params: Any) -> dict[str, Any]:
        _no_params(params)
        self._require()
        self._snapshot = None
        self._ids = ()
        return {"released": "mempool"}


def _no_params(params: Any) -> None:
    if params not in (None, {}):
        raise RpcFault(INVALID_PARAMS, "Invalid request: this method takes no parameters.")

"""Per-client state and the method table: which mini-protocol serves each Ogmios method, and how."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from devnet.ogmios.blockjson import BlockJsonCache
from devnet.ogmios.chainsync import ChainSyncCursor, TipCache
from devnet.ogmios.mempool import MempoolMonitor
from devnet.ogmios.queries import LedgerStateQueries
from devnet.ogmios.rpc import (
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    Request,
    RpcFault,
    error_bytes,
    result_bytes,
)
from devnet.ogmios.txjson import TxJsonOptions
from devnet.ogmios.txsubmit import evaluate_transaction, submit_transaction

__all__ = ["PROTOCOLS", "Session", "SharedState", "protocol_of"]

log = logging.getLogger("devnet.ogmios")

CHAIN_SYNC: Final = "chain-sync"
STATE_QUERY: Final = "state-query"
TX_SUBMISSION: Final = "tx-submission"
TX_MONITOR: Final = "tx-monitor"
PROTOCOLS: Final = (CHAIN_SYNC, STATE_QUERY, TX_SUBMISSION, TX_MONITOR)

Handler = Callable[["Session", Any], Any]


@dataclass(slots=True)
class SharedState:
    """What every session of one server shares: the chain, options and the serialized-block cache."""

    chain: Any
    tx_opts: TxJsonOptions
    blocks: BlockJsonCache
    tips: TipCache


class Session:
    def __init__(self, shared: SharedState) -> None:
        self.shared = shared
        chain = shared.chain
        self.cursor = ChainSyncCursor(chain, shared.blocks, shared.tips)
        self.mempool = MempoolMonitor(chain, shared.tx_opts)
        self.queries = LedgerStateQueries(chain)

    async def dispatch(self, request: Request) -> bytes:
        """Run one request; always returns a response frame (errors included), never raises."""
        return (await self.run(request))[0]

    async def run(self, request: Request) -> tuple[bytes, bool]:
        """Like :meth:`dispatch`, also telling whether the response is an error."""
        method = request.method
        handler = _handler_for(method)
        try:
            if handler is None:
                raise RpcFault(METHOD_NOT_FOUND, f"Method not found: '{method[:100]}'.", with_method=False)
            result = handler(self, request.params)
            if inspect.isawaitable(result):
                result = await result
            return result_bytes(method, result, request.id), False
        except RpcFault as fault:
            return error_bytes(method, fault, request.id), True
        except Exception:
            log.exception("ogmios_internal_error method=%s", method)
            internal = RpcFault(INTERNAL_ERROR, "Internal error: the devnet failed to process this request.")
            return error_bytes(method, internal, request.id), True


_METHODS: Final[dict[str, tuple[str, Handler]]] = {
    "findIntersection": (CHAIN_SYNC, lambda s, p: s.cursor.find_intersection(p)),
    "nextBlock": (CHAIN_SYNC, lambda s, p: _next_block(s, p)),
    "submitTransaction": (TX_SUBMISSION, lambda s, p: submit_transaction(s.shared.chain, p)),
    "evaluateTransaction": (TX_SUBMISSION, lambda s, p: evaluate_transaction(s.shared.chain, p)),
    "acquireMempool": (TX_MONITOR, lambda s, p: s.mempool.acquire(p)),
    "nextTransaction": (TX_MONITOR, lambda s, p: s.mempool.next_transaction(p)),
    "hasTransaction": (TX_MONITOR, lambda s, p: s.mempool.has_transaction(p)),
    "sizeOfMempool": (TX_MONITOR, lambda s, p: s.mempool.size(p)),
    "releaseMempool": (TX_MONITOR, lambda s, p: s.mempool.release(p)),
}
_QUERY_PREFIXES: Final = ("queryNetwork/", "queryLedgerState/")
_LEDGER_STATE_METHODS: Final = ("acquireLedgerState", "releaseLedgerState")


def _next_block(session: Session, params: Any) -> Awaitable[Any]:
    if params not in (None, {}):
        raise RpcFault(-32602, "Invalid request: 'nextBlock' takes no parameters.")
    return session.cursor.next_block()


def _handler_for(method: str) -> Handler | None:
    entry = _METHODS.get(method)
    if entry is not None:
        return entry[1]
    if method.startswith(_QUERY_PREFIXES) or method in _LEDGER_STATE_METHODS:
        return lambda session, params: session.queries.handle(method, params)
    return None


def protocol_of(method: str) -> str | None:
    """The mini-protocol whose queue serves ``method`` (responses are ordered per protocol)."""
    entry = _METHODS.get(method)
    if entry is not None:
        return entry[0]
    if method.startswith(_QUERY_PREFIXES) or method in _LEDGER_STATE_METHODS:
        return STATE_QUERY
    return None

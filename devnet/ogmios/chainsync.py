"""Ogmios chain-sync: ``findIntersection`` and ``nextBlock`` over the devnet chain, one cursor per client.

Semantics (as cardano-node's chain-sync server through Ogmios):
- a fresh cursor sits at origin and its first ``nextBlock`` is a ``backward`` to origin;
- after ``findIntersection`` the first ``nextBlock`` is a ``backward`` to the intersection;
- when the block the client last received is no longer on the chain (a rollback), the next answer is a
  ``backward`` to the newest point the client has that is still on the chain, then ``forward`` again;
- at the tip, ``nextBlock`` waits for a new block or a rollback.
Forward answers reuse each block's cached JSON; only the tip (cached per chain version) and the envelope
are assembled per request.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from devnet.ogmios.blockjson import BlockJsonCache
from devnet.ogmios.encoding import dumps, is_hex
from devnet.ogmios.rpc import INVALID_PARAMS, RawResult, RpcFault

__all__ = ["ChainSyncCursor", "TipCache", "parse_point"]

_HISTORY_POINTS: Final = 4096
_MAX_POINTS: Final = 1000


class TipCache:
    """The chain tip as ``Tip`` JSON bytes, re-encoded only when the chain version changes."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self._version = -1
        self._tip = b'"origin"'

    def get(self) -> bytes:
        if self._version != self.chain.version:
            self._tip = dumps(self.chain.tip_json())
            self._version = self.chain.version
        return self._tip


def parse_point(point: Any) -> tuple[int, str] | None:
    """``"origin"`` → None; ``{"slot": n, "id": hex64}`` → (slot, id); anything else → -32602."""
    if point == "origin":
        return None
    if (
        isinstance(point, dict)
        and set(point) == {"slot", "id"}
        and isinstance(point["slot"], int)
        and not isinstance(point["slot"], bool)
        and point["slot"] >= 0
        and is_hex(point["id"], 64)
    ):
        return point["slot"], point["id"]
    raise RpcFault(
        INVALID_PARAMS,
        "Invalid request: a point is either 'origin' or an object with 'slot' (integer) and 'id' (64 hex).",
    )


class ChainSyncCursor:
    """One client's position on the chain plus the points it has seen (to resolve rollbacks)."""

    def __init__(self, chain: Any, blocks: BlockJsonCache, tips: TipCache) -> None:
        self.chain = chain
        self.blocks = blocks
        self.tips = tips
        self.height = 0  # 0 = origin
        self.slot = 0
        self.block_id = ""
        self.pending_backward = True
        self.history: deque[tuple[int, int, str]] = deque(maxlen=_HISTORY_POINTS)

    # -- helpers --------------------------------------------------------------------------------------

    def _point_json(self) -> bytes:
        if self.height == 0:
            return b'"origin"'
        return b'{"slot":%d,"id":"%s"}' % (self.slot, self.block_id.encode())

    def _move_to(self, height: int, slot: int, block_id: str) -> None:
        self.height, self.slot, self.block_id = height, slot, block_id

    def _on_chain(self, height: int, block_id: str) -> bool:
        block = self.chain.block_at_height(height)
        return block is not None and block.id == block_id

    def _protocol_version(self) -> dict[str, int]:
        params = self.chain.params
        return {"major": int(params.protocol_major), "minor": int(params.protocol_minor)}

    # -- findIntersection -----------------------------------------------------------------------------

    def find_intersection(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict) or not isinstance(params.get("points"), list) or set(params) - {"points"}:
            raise RpcFault(INVALID_PARAMS, "Invalid request: expected 'params' with a list of 'points'.")
        points = params["points"]
        if len(points) > _MAX_POINTS:
            raise RpcFault(INVALID_PARAMS, f"Invalid request: at most {_MAX_POINTS} points are accepted.")
        parsed = [parse_point(p) for p in points]
        tip = self.chain.tip_json()
        for point in parsed:
            if point is None:
                self._intersect(0, 0, "")
                return {"intersection": "origin", "tip": tip}
            slot, block_id = point
            block = self.chain.block_by_id(block_id)
            if block is not None and block.slot == slot:
                self._intersect(block.height, block.slot, block.id)
                return {"intersection": {"slot": block.slot, "id": block.id}, "tip": tip}
        raise RpcFault(1000, "No intersection found.", {"tip": tip})

    def _intersect(self, height: int, slot: int, block_id: str) -> None:
        self._move_to(height, slot, block_id)
        self.pending_backward = True
        self.history.clear()
        start = max(1, height - _HISTORY_POINTS + 1)
        for h in range(start, height + 1):
            block = self.chain.block_at_height(h)
            if block is not None:
                self.history.append((block.height, block.slot, block.id))

    # -- nextBlock ------------------------------------------------------------------------------------

    def _backward(self) -> RawResult:
        return RawResult(b'{"direction":"backward","point":%s,"tip":%s}' % (self._point_json(), self.tips.get()))

    def _resolve_rollback(self) -> None:
        """Move to the newest point the client knows that is still on the chain (or origin)."""
        while self.history:
            height, slot, block_id = self.history[-1]
            if height < self.height and self._on_chain(height, block_id):
                self._move_to(height, slot, block_id)
                return
            self.history.pop()
        self._move_to(0, 0, "")

    def step(self) -> RawResult | None:
        """The answer available now, or None when the client is at the tip (caller waits)."""
        if self.pending_backward:
            self.pending_backward = False
            return self._backward()
        if self.height and not self._on_chain(self.height, self.block_id):
            self._resolve_rollback()
            return self._backward()
        block = self.chain.block_at_height(self.height + 1)
        if block is None:
            return None
        self._move_to(block.height, block.slot, block.id)
        self.history.append((block.height, block.slot, block.id))
        encoded = self.blocks.get(block, self._protocol_version())
        return RawResult(b'{"direction":"forward","block":%s,"tip":%s}' % (encoded, self.tips.get()))

    async def next_block(self) -> RawResult:
        while True:
            version = self.chain.version
            answer = self.step()
            if answer is not None:
                return answer
            await self.chain.wait_for_change(version)

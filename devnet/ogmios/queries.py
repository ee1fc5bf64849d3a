"""Ogmios network and ledger-state queries (local-state-query), including acquire / release.

Queries run against the chain tip unless the connection acquired a point. An acquired point must be on
the chain and within ``securityParameter`` blocks of the tip (else 2000 "too old" / "no longer exist").
Later queries answer for that point: the UTxO set is rebuilt from the chain's output records; if the
point was rolled away meanwhile, queries fail with 2003 (acquired state expired).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from devnet.ledger.types import OutRef
from devnet.ogmios.chainsync import parse_point
from devnet.ogmios.encoding import address_bytes_from_text, is_hex
from devnet.ogmios.rpc import INVALID_PARAMS, METHOD_NOT_FOUND, RpcFault
from devnet.ogmios.txjson import decode_output, output_json

__all__ = ["LedgerStateQueries", "utxo_entry"]

_MAX_FILTER_ITEMS = 10_000
_GENESIS_ERAS = ("byron", "shelley", "alonzo", "conway")


@functools.lru_cache(maxsize=65_536)
def _output_fields(raw: bytes) -> dict[str, Any]:
    return output_json(decode_output(raw), include_script_cbor=True)


def utxo_entry(tx_id: str, index: int, out: Any) -> dict[str, Any]:
    """One element of a ``Utxo`` array: output reference then the output's fields."""
    entry: dict[str, Any] = {"transaction": {"id": tx_id}, "index": index}
    entry.update(_output_fields(out.raw))
    return entry


def _bad(message: str) -> RpcFault:
    return RpcFault(INVALID_PARAMS, f"Invalid request: {message}")


class LedgerStateQueries:
    """Per-connection query handler (holds the acquired point, if any)."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self.acquired: tuple[int, int, str] | None = None  # (height, slot, id); height 0 = origin
        self.handlers: dict[str, Callable[[Any], Any]] = {
            "queryNetwork/tip": self._network_tip,
            "queryNetwork/blockHeight": self._network_block_height,
            "queryNetwork/startTime": self._network_start_time,
            "queryNetwork/genesisConfiguration": self._genesis_configuration,
            "queryLedgerState/tip": self._ledger_tip,
            "queryLedgerState/epoch": self._epoch,
            "queryLedgerState/eraStart": self._era_start,
            "queryLedgerState/eraSummaries": self._era_summaries,
            "queryLedgerState/protocolParameters": self._protocol_parameters,
            "queryLedgerState/utxo": self._utxo,
            "acquireLedgerState": self.acquire,
            "releaseLedgerState": self.release,
        }

    def handle(self, method: str, params: Any) -> Any:
        handler = self.handlers.get(method)
        if handler is None:
            raise RpcFault(METHOD_NOT_FOUND, f"Unsupported query by the devnet: '{method}'.", with_method=False)
        return handler(params)

    # -- acquire / release ----------------------------------------------------------------------------

    def acquire(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict) or set(params) != {"point"}:
            raise _bad("expected 'params.point'.")
        point = parse_point(params["point"])
        tip = self.chain.tip
        if point is None:
            if tip is not None and tip.height > self.chain.genesis.security_param:
                raise RpcFault(2000, "Failed to acquire requested point.", "Acquired point is now too old.")
            self.acquired = (0, 0, "")
            return {"acquired": "ledgerState", "point": "origin"}
        slot, block_id = point
        block = self.chain.block_by_id(block_id)
        if block is None or block.slot != slot:
            raise RpcFault(2000, "Failed to acquire requested point.", "Acquired point no longer exist.")
        if tip is not None and tip.height - block.height > self.chain.genesis.security_param:
            raise RpcFault(2000, "Failed to acquire requested point.", "Acquired point is now too old.")
        self.acquired = (block.height, block.slot, block.id)
        return {"acquired": "ledgerState", "point": {"slot": block.slot, "id": block.id}}

    def release(self, params: Any) -> dict[str, Any]:
        _no_params(params)
        self.acquired = None
        return {"released": "ledgerState"}

    def _state_point(self) -> tuple[int, int, str] | None:
        """The acquired point if it is behind the tip, None when queries run at the tip."""
        if self.acquired is None:
            return None
        height, _, block_id = self.acquired
        tip = self.chain.tip
        if height == 0:
            return None if tip is None else self.acquired
        block = self.chain.block_at_height(height)
        if block is None or block.id != block_id:
            raise RpcFault(
                2003,
                "Previously acquired ledger state is no longer available.",
                "The acquired point was rolled back; acquire a new point.",
            )
        return None if tip is not None and tip.id == block_id else self.acquired

    # -- queryNetwork ---------------------------------------------------------------------------------

    def _network_tip(self, params: Any) -> Any:
        _no_params(params)
        return self.chain.tip_point()

    def _network_block_height(self, params: Any) -> Any:
        _no_params(params)
        tip = self.chain.tip
        return tip.height if tip is not None else "origin"

    def _network_start_time(self, params: Any) -> Any:
        _no_params(params)
        return self.chain.genesis.start_time_text()

    def _genesis_configuration(self, params: Any) -> Any:
        if not isinstance(params, dict) or set(params) != {"era"} or params["era"] not in _GENESIS_ERAS:
            raise _bad("expected 'params.era', one of 'byron', 'shelley', 'alonzo' or 'conway'.")
        encode = getattr(self.chain.genesis, f"{params['era']}_json")
        return _conform_genesis(encode(self.chain.params))

    # -- queryLedgerState -----------------------------------------------------------------------------

    def _ledger_tip(self, params: Any) -> Any:
        _no_params(params)
        point = self._state_point()
        if point is None:
            return self.chain.tip_point()
        return "origin" if point[0] == 0 else {"slot": point[1], "id": point[2]}

    def _epoch(self, params: Any) -> Any:
        _no_params(params)
        point = self._state_point()
        if point is None:
            return self.chain.epoch()
        return point[1] // self.chain.genesis.epoch_length

    def _era_start(self, params: Any) -> Any:
        _no_params(params)
        return {"time": {"seconds": 0}, "slot": 0, "epoch": 0}

    def _era_summaries(self, params: Any) -> Any:
        _no_params(params)
        return self.chain.genesis.era_summaries()

    def _protocol_parameters(self, params: Any) -> Any:
        _no_params(params)
        return self.chain.params.to_ogmios()

    def _utxo(self, params: Any) -> list[dict[str, Any]]:
        point = self._state_point()
        if params in (None, {}):
            return self._select(point, lambda ref, out: True)
        if not isinstance(params, dict) or len(params) != 1:
            raise _bad("expected either 'addresses' or 'outputReferences'.")
        if "addresses" in params:
            wanted = _parse_addresses(params["addresses"])
            if point is None:
                entries = [
                    utxo_entry(ref.tx_id, ref.index, out)
                    for raw in sorted(wanted)
                    for ref, out in self.chain.utxos_at(raw)
                ]
                return sorted(entries, key=lambda e: (e["transaction"]["id"], e["index"]))
            return self._select(point, lambda ref, out: out.address_bytes in wanted)
        if "outputReferences" in params:
            refs = _parse_out_refs(params["outputReferences"])
            if point is None:
                found = []
                for tx_id, index in sorted(refs):
                    out = self._live_output(tx_id, index)
                    if out is not None:
                        found.append(utxo_entry(tx_id, index, out))
                return found
            return self._select(point, lambda ref, out: (ref.tx_id, ref.index) in refs)
        raise _bad("expected either 'addresses' or 'outputReferences'.")

    def _live_output(self, tx_id: str, index: int) -> Any:
        return self.chain.utxo.get(OutRef(tx_id, index))

    def _select(self, point: tuple[int, int, str] | None, keep: Callable[[Any, Any], bool]) -> list[Any]:
        """UTxO entries at the tip (point None) or at an acquired point, sorted by output reference."""
        if point is None:
            pairs = [(ref, out) for ref, out in self.chain.utxo.items() if keep(ref, out)]
        else:
            slot = point[1]
            pairs = [
                (ref, record.out)
                for ref, record in self.chain.outputs.items()
                if record.created.slot <= slot
                and (record.spent is None or record.spent.slot > slot)
                and keep(ref, record.out)
            ]
        pairs.sort(key=lambda pair: (pair[0].tx_id, pair[0].index))
        return [utxo_entry(ref.tx_id, ref.index, out) for ref, out in pairs]


def _conform_genesis(document: dict[str, Any]) -> dict[str, Any]:
    """Keep the genesis documents inside cardano.json (Byron parameters have no ``version``; a Conway
    constitution always states its ``guardrails``)."""
    if document.get("era") == "byron" and isinstance(document.get("updatableParameters"), dict):
        document = {**document, "updatableParameters": dict(document["updatableParameters"])}
        document["updatableParameters"].pop("version", None)
    if document.get("era") == "conway" and isinstance(document.get("constitution"), dict):
        document = {**document, "constitution": {"guardrails": None, **document["constitution"]}}
    return document


def _parse_addresses(addresses: Any) -> set[bytes]:
    if not isinstance(addresses, list) or len(addresses) > _MAX_FILTER_ITEMS:
        raise _bad(f"'addresses' must be a list of at most {_MAX_FILTER_ITEMS} addresses.")
    wanted: set[bytes] = set()
    for address in addresses:
        raw = address_bytes_from_text(address) if isinstance(address, str) else None
        if raw is None:
            raise _bad(f"invalid address: {str(address)[:120]!r}.")
        wanted.add(raw)
    return wanted


def _parse_out_refs(refs: Any) -> set[tuple[str, int]]:
    if not isinstance(refs, list) or len(refs) > _MAX_FILTER_ITEMS:
        raise _bad(f"'outputReferences' must be a list of at most {_MAX_FILTER_ITEMS} output references.")
    parsed: set[tuple[str, int]] = set()
    for ref in refs:
        try:
            tx_id = ref["transaction"]["id"]
            index = ref["index"]
        except (TypeError, KeyError):
            raise _bad('an output reference is {"transaction": {"id": …}, "index": …}.') from None
        if not is_hex(tx_id, 64) or not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise _bad("an output reference needs a 64-hex transaction id and a non-negative index.")
        parsed.add((tx_id, index))
    return parsed


def _no_params(params: Any) -> None:
    if params not in (None, {}):
        raise _bad("this query takes no parameters.")

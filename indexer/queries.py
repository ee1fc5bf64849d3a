"""Chain queries: protocol parameters (cached per epoch), UTxOs and balances (Kupo), out-refs (Ogmios),
and transaction submission. Inputs reaching this layer are already validated by the service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from common.cardano import AssetId
from common.rpc.creatorpass.v1 import chain_pb2, common_pb2
from indexer.chain import parse_point
from indexer.convert import kupo_utxo, kupo_value, ogmios_utxo, protocol_parameters
from indexer.kupo import KupoClient, KupoResponse
from indexer.ogmios import OgmiosClient

__all__ = ["ChainQueries"]


def _has_asset(utxo: common_pb2.Utxo, asset: AssetId | None) -> bool:
    if asset is None:
        return True
    return any(a.asset.policy_id == asset.policy_id and a.asset.asset_name == asset.asset_name and a.quantity
               for a in utxo.value.assets)


def _kupo_point(response: KupoResponse) -> common_pb2.Point:
    return common_pb2.Point(slot=response.checkpoint_slot or 0, block_id=response.checkpoint_id)


class ChainQueries:
    def __init__(self, ogmios: OgmiosClient, kupo: KupoClient, *, submit_timeout_s: float = 30.0,
                 params_recheck_s: float = 10.0) -> None:
        self.ogmios = ogmios
        self.kupo = kupo
        self.submit_timeout_s = submit_timeout_s
        self.params_recheck_s = params_recheck_s
        self._params: chain_pb2.ProtocolParameters | None = None
        self._params_checked_at = 0.0
        self._params_lock = asyncio.Lock()

    async def protocol_parameters(self) -> chain_pb2.ProtocolParameters:
        """Cached per epoch: the epoch is re-checked at most every ``params_recheck_s`` seconds."""
        if self._params is not None and time.monotonic() - self._params_checked_at < self.params_recheck_s:
            return self._params
        async with self._params_lock:
            if self._params is not None and time.monotonic() - self._params_checked_at < self.params_recheck_s:
                return self._params
            epoch = int(await self.ogmios.request("queryLedgerState/epoch"))
            if self._params is None or self._params.epoch != epoch:
                raw = await self.ogmios.request("queryLedgerState/protocolParameters")
                self._params = protocol_parameters(epoch, raw)
            self._params_checked_at = time.monotonic()
            return self._params

    async def utxos_at(self, address: str, asset: AssetId | None) -> chain_pb2.GetUtxosResponse:
        response = await self.kupo.matches(address, unspent=True, resolve_hashes=True,
                                           policy_id=asset.policy_id if asset else None,
                                           asset_name=asset.asset_name if asset else None)
        utxos = [kupo_utxo(m) for m in response.body]
        utxos = [u for u in utxos if _has_asset(u, asset)]
        return chain_pb2.GetUtxosResponse(utxos=utxos, as_of=_kupo_point(response))

    async def utxos_by_refs(self, refs: Sequence[tuple[str, int]], asset: AssetId | None
                            ) -> chain_pb2.GetUtxosResponse:
        params = {"outputReferences": [{"transaction": {"id": tx_id}, "index": index} for tx_id, index in refs]}
        await self.ogmios.ensure_connected()
        utxo_future = await self.ogmios.send("queryLedgerState/utxo", params)
        tip_future = await self.ogmios.send("queryLedgerState/tip")
        entries: list[dict[str, Any]] = await self.ogmios.wait(utxo_future, "queryLedgerState/utxo")
        point = parse_point(await self.ogmios.wait(tip_future, "queryLedgerState/tip"))
        utxos = [u for u in (ogmios_utxo(e) for e in entries) if _has_asset(u, asset)]
        return chain_pb2.GetUtxosResponse(utxos=utxos, as_of=common_pb2.Point(slot=point.slot, block_id=point.id))

    async def balance(self, address: str, asset: AssetId | None) -> chain_pb2.GetAssetBalanceResponse:
        response = await self.kupo.matches(address, unspent=True)
        lovelace, quantities = 0, dict[tuple[str, str], int]()
        for match in response.body:
            value = kupo_value(match.get("value") or {})
            lovelace += value.lovelace
            for amount in value.assets:
                key = (amount.asset.policy_id, amount.asset.asset_name)
                quantities[key] = quantities.get(key, 0) + amount.quantity
        total = common_pb2.Value(lovelace=lovelace, assets=[
            common_pb2.AssetAmount(asset=common_pb2.AssetId(policy_id=p, asset_name=n), quantity=q)
            for (p, n), q in sorted(quantities.items())])
        quantity = quantities.get((asset.policy_id, asset.asset_name), 0) if asset else 0
        return chain_pb2.GetAssetBalanceResponse(lovelace=lovelace, quantity=quantity, value=total,
                                                 as_of=_kupo_point(response), utxo_count=len(response.body))

    async def submit(self, tx_cbor: bytes) -> str:
        """Forward a signed tx; return its id. Never retried after it was written (the caller decides)."""
        result = await self.ogmios.request("submitTransaction", {"transaction": {"cbor": tx_cbor.hex()}},
                                           timeout_s=self.submit_timeout_s, idempotent=False)
        return str(result["transaction"]["id"])

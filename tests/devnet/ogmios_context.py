"""A pycardano ChainContext fed only by Ogmios JSON (protocol parameters, genesis, tip, UTxO), the way
pycardano's own ``OgmiosV6ChainContext`` maps them: if the devnet's JSON is off, building a tx fails.

pycardano calls the context synchronously, so ``create`` fetches everything first over an async client.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from pycardano import (
    Address,
    Asset,
    AssetName,
    ChainContext,
    GenesisParameters,
    MultiAsset,
    Network,
    ProtocolParameters,
    ScriptHash,
    TransactionInput,
    TransactionOutput,
    UTxO,
    Value,
)

__all__ = ["OgmiosChainContext"]


def _ratio(text: str) -> Fraction:
    numerator, denominator = text.split("/")
    return Fraction(int(numerator), int(denominator))


def _utxo(entry: dict[str, Any]) -> UTxO:
    tx_in = TransactionInput.from_primitive([entry["transaction"]["id"], entry["index"]])
    lovelace = entry["value"]["ada"]["lovelace"]
    assets = MultiAsset()
    for policy, names in entry["value"].items():
        if policy != "ada":
            for name, quantity in names.items():
                assets.setdefault(ScriptHash.from_primitive(policy), Asset())[AssetName.from_primitive(name)] = quantity
    amount = Value(lovelace, assets) if assets else lovelace
    return UTxO(tx_in, TransactionOutput(Address.from_primitive(entry["address"]), amount))


class OgmiosChainContext(ChainContext):
    def __init__(self, params: dict[str, Any], shelley: dict[str, Any], tip_slot: int, epoch: int) -> None:
        self.params = params
        self.shelley = shelley
        self.tip_slot = tip_slot
        self._epoch = epoch
        self.utxo_by_address: dict[str, list[UTxO]] = {}

    @classmethod
    async def create(cls, client: Any, addresses: tuple[str, ...] = ()) -> OgmiosChainContext:
        params = (await client.call("queryLedgerState/protocolParameters"))["result"]
        shelley = (await client.call("queryNetwork/genesisConfiguration", {"era": "shelley"}))["result"]
        tip = (await client.call("queryLedgerState/tip"))["result"]
        epoch = (await client.call("queryLedgerState/epoch"))["result"]
        context = cls(params, shelley, tip["slot"], epoch)
        for address in addresses:
            result = (await client.call("queryLedgerState/utxo", {"addresses": [address]}))["result"]
            context.utxo_by_address[address] = [_utxo(entry) for entry in result]
        return context

    @property
    def protocol_param(self) -> ProtocolParameters:
        p = self.params
        return ProtocolParameters(
            min_fee_constant=p["minFeeConstant"]["ada"]["lovelace"],
            min_fee_coefficient=p["minFeeCoefficient"],
            min_pool_cost=p["minStakePoolCost"]["ada"]["lovelace"],
            max_block_size=p["maxBlockBodySize"]["bytes"],
            max_tx_size=p["maxTransactionSize"]["bytes"],
            max_block_header_size=p["maxBlockHeaderSize"]["bytes"],
            key_deposit=p["stakeCredentialDeposit"]["ada"]["lovelace"],
            pool_deposit=p["stakePoolDeposit"]["ada"]["lovelace"],
            pool_influence=_ratio(p["stakePoolPledgeInfluence"]),
            monetary_expansion=_ratio(p["monetaryExpansion"]),
            treasury_expansion=_ratio(p["treasuryExpansion"]),
            decentralization_param=Fraction(0),
            extra_entropy="",
            protocol_major_version=p["version"]["major"],
            protocol_minor_version=p["version"]["minor"],
            min_utxo=0,
            price_mem=_ratio(p["scriptExecutionPrices"]["memory"]),
            price_step=_ratio(p["scriptExecutionPrices"]["cpu"]),
            max_tx_ex_mem=p["maxExecutionUnitsPerTransaction"]["memory"],
            max_tx_ex_steps=p["maxExecutionUnitsPerTransaction"]["cpu"],
            max_block_ex_mem=p["maxExecutionUnitsPerBlock"]["memory"],
            max_block_ex_steps=p["maxExecutionUnitsPerBlock"]["cpu"],
            max_val_size=p["maxValueSize"]["bytes"],
            collateral_percent=p["collateralPercentage"],
            max_collateral_inputs=p["maxCollateralInputs"],
            coins_per_utxo_word=0,
            coins_per_utxo_byte=p["minUtxoDepositCoefficient"],
            cost_models={},
        )

    @property
    def genesis_param(self) -> GenesisParameters:
        g = self.shelley
        return GenesisParameters(
            active_slots_coefficient=_ratio(g["activeSlotsCoefficient"]),
            update_quorum=g["updateQuorum"],
            max_lovelace_supply=g["maxLovelaceSupply"],
            network_magic=g["networkMagic"],
            epoch_length=g["epochLength"],
            system_start=0,
            slots_per_kes_period=g["slotsPerKesPeriod"],
            slot_length=g["slotLength"]["milliseconds"] // 1000,
            max_kes_evolutions=g["maxKesEvolutions"],
            security_param=g["securityParameter"],
        )

    @property
    def network(self) -> Network:
        return Network.MAINNET if self.shelley["network"] == "mainnet" else Network.TESTNET

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    @property
    def last_block_slot(self) -> int:
        return int(self.tip_slot)

    def _utxos(self, address: str) -> list[UTxO]:
        return list(self.utxo_by_address.get(address, []))

"""Protocol parameters (defaults: mainnet's Conway values) and their Ogmios v6 JSON encoding."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["MAX_REF_SCRIPTS_BYTES", "REF_SCRIPT_TIER_BYTES", "REF_SCRIPT_TIER_MULTIPLIER", "ProtocolParameters"]

# Conway ledger constants (Cardano.Ledger.Conway.PParams: ppRefScriptCostStrideG, ppRefScriptCostMultiplierG,
# ppMaxRefScriptSizePerTxG).
REF_SCRIPT_TIER_BYTES = 25_600
REF_SCRIPT_TIER_MULTIPLIER = Fraction(6, 5)
MAX_REF_SCRIPTS_BYTES = 200 * 1024


@lru_cache(maxsize=1)
def _cost_models() -> dict[str, list[int]]:
    # pycardano's default V1/V2 models in canonical (alphabetical) parameter order, the order Ogmios emits;
    # V3 is mainnet's Conway genesis model (cardano-node-config/mainnet/genesis/conway.json, plutusV3CostModel).
    models: dict[str, list[int]] = json.loads((Path(__file__).parent / "cost_models.json").read_text())
    return models


@dataclass(frozen=True, slots=True)
class ProtocolParameters:
    """The parameters the devnet ledger enforces plus those clients read (mainnet defaults)."""

    min_fee_coefficient: int = 44  # minFeeA, lovelace per byte
    min_fee_constant_lovelace: int = 155381  # minFeeB
    min_utxo_deposit_coefficient: int = 4310  # coinsPerUTxOByte
    min_utxo_deposit_constant_lovelace: int = 0
    max_transaction_size_bytes: int = 16384
    max_block_body_size_bytes: int = 90112
    max_block_header_size_bytes: int = 1100
    max_value_size_bytes: int = 5000
    stake_credential_deposit_lovelace: int = 2_000_000
    stake_pool_deposit_lovelace: int = 500_000_000
    stake_pool_retirement_epoch_bound: int = 18
    desired_number_of_stake_pools: int = 500
    min_stake_pool_cost_lovelace: int = 170_000_000
    collateral_percentage: int = 150
    max_collateral_inputs: int = 3
    protocol_major: int = 10
    protocol_minor: int = 0
    governance_action_deposit_lovelace: int = 100_000_000_000
    drep_deposit_lovelace: int = 500_000_000
    min_fee_ref_script_cost_per_byte: int = 15  # minFeeRefScriptCostPerByte (Conway genesis)
    extra: dict[str, Any] = field(default_factory=dict)  # raw Ogmios keys overriding the encoding

    def replace(self, **changes: Any) -> ProtocolParameters:
        return dataclasses.replace(self, **changes)

    def min_fee(self, tx_size_bytes: int, ref_script_bytes: int = 0) -> int:
        """Conway's minimum fee without Plutus: minFeeA * size + minFeeB + tierRefScriptFee
        (``Cardano.Ledger.Conway.Tx`` ``getConwayMinFeeTx``); ``tx_size_bytes`` as ``Tx.ledger_size``."""
        linear = self.min_fee_coefficient * tx_size_bytes + self.min_fee_constant_lovelace
        return linear + self.ref_script_fee(ref_script_bytes) if ref_script_bytes else linear

    def ref_script_fee(self, ref_script_bytes: int) -> int:
        """``tierRefScriptFee``: each full 25,600-byte tier costs its size times the tier's price per byte,
        the price grows x1.2 per tier (ledger constants, not parameters); the total is floored."""
        price, total, left = Fraction(self.min_fee_ref_script_cost_per_byte), Fraction(0), ref_script_bytes
        while left >= REF_SCRIPT_TIER_BYTES:
            total += REF_SCRIPT_TIER_BYTES * price
            price *= REF_SCRIPT_TIER_MULTIPLIER
            left -= REF_SCRIPT_TIER_BYTES
        return math.floor(total + left * price)

    def min_utxo(self, output_size_bytes: int) -> int:
        """Babbage/Conway min-UTxO: (160 + serialized output size) * coinsPerUTxOByte."""
        return (160 + output_size_bytes) * self.min_utxo_deposit_coefficient

    def to_ogmios(self) -> dict[str, Any]:
        """The ``queryLedgerState/protocolParameters`` result object."""

        def ada(lovelace: int) -> dict[str, dict[str, int]]:
            return {"ada": {"lovelace": lovelace}}

        result: dict[str, Any] = {
            "minFeeCoefficient": self.min_fee_coefficient,
            "minFeeConstant": ada(self.min_fee_constant_lovelace),
            "minFeeReferenceScripts": {"base": float(self.min_fee_ref_script_cost_per_byte),
                                       "range": REF_SCRIPT_TIER_BYTES, "multiplier": 1.2},
            "maxBlockBodySize": {"bytes": self.max_block_body_size_bytes},
            "maxBlockHeaderSize": {"bytes": self.max_block_header_size_bytes},
            "maxTransactionSize": {"bytes": self.max_transaction_size_bytes},
            "maxReferenceScriptsSize": {"bytes": MAX_REF_SCRIPTS_BYTES},
            "stakeCredentialDeposit": ada(self.stake_credential_deposit_lovelace),
            "stakePoolDeposit": ada(self.stake_pool_deposit_lovelace),
            "stakePoolRetirementEpochBound": self.stake_pool_retirement_epoch_bound,
            "desiredNumberOfStakePools": self.desired_number_of_stake_pools,
            "stakePoolPledgeInfluence": "3/10",
            "monetaryExpansion": "3/1000",
            "treasuryExpansion": "1/5",
            "minStakePoolCost": ada(self.min_stake_pool_cost_lovelace),
            "minUtxoDepositConstant": ada(self.min_utxo_deposit_constant_lovelace),
            "minUtxoDepositCoefficient": self.min_utxo_deposit_coefficient,
            "plutusCostModels": {name: list(model) for name, model in _cost_models().items()},
            "scriptExecutionPrices": {"memory": "577/10000", "cpu": "721/10000000"},
            "maxExecutionUnitsPerTransaction": {"memory": 14_000_000, "cpu": 10_000_000_000},
            "maxExecutionUnitsPerBlock": {"memory": 62_000_000, "cpu": 20_000_000_000},
            "maxValueSize": {"bytes": self.max_value_size_bytes},
            "collateralPercentage": self.collateral_percentage,
            "maxCollateralInputs": self.max_collateral_inputs,
            "version": {"major": self.protocol_major, "minor": self.protocol_minor},
            "stakePoolVotingThresholds": {
                "noConfidence": "51/100",
                "constitutionalCommittee": {"default": "51/100", "stateOfNoConfidence": "51/100"},
                "hardForkInitiation": "51/100",
                "protocolParametersUpdate": {"security": "51/100"},
            },
            "delegateRepresentativeVotingThresholds": {
                "noConfidence": "67/100",
                "constitutionalCommittee": {"default": "67/100", "stateOfNoConfidence": "3/5"},
                "constitution": "3/4",
                "hardForkInitiation": "3/5",
                "protocolParametersUpdate": {
                    "network": "67/100",
                    "economic": "67/100",
                    "technical": "67/100",
                    "governance": "3/4",
                },
                "treasuryWithdrawals": "67/100",
            },
            "constitutionalCommitteeMinSize": 7,
            "constitutionalCommitteeMaxTermLength": 146,
            "governanceActionLifetime": 6,
            "governanceActionDeposit": ada(self.governance_action_deposit_lovelace),
            "delegateRepresentativeDeposit": ada(self.drep_deposit_lovelace),
            "delegateRepresentativeMaxIdleTime": 20,
        }
        result.update(self.extra)
        return result

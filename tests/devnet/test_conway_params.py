"""``queryLedgerState/protocolParameters`` pinned whole (issue 16, item 9): the Ogmios v6.14 schema, the key set
of every Conway-era test vector, mainnet's Conway genesis (cardano-node-config/mainnet/genesis/conway.json) for
the cost model and governance values, mainnet's current values for the rest."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

from tests.devnet.schemas import REFERENCE, validate_ogmios

ROOT = Path(__file__).resolve().parents[2]
CONWAY_GENESIS = ROOT / "cardano-node-config" / "mainnet" / "genesis" / "conway.json"


async def _parameters(ogmios_client: Any) -> dict[str, Any]:
    message = await ogmios_client.call("queryLedgerState/protocolParameters", None, request_id=1)
    validate_ogmios("QueryLedgerStateProtocolParametersResponse", message)
    result: dict[str, Any] = message["result"]
    return result


async def test_the_parameter_set_matches_the_reference_vectors(ogmios_client: Any) -> None:
    params = await _parameters(ogmios_client)
    vectors = sorted((REFERENCE / "ogmios" / "test-vectors" / "QueryLedgerStateProtocolParameters").glob("*.json"))
    conway_keys = {frozenset(result) for path in vectors
                   if isinstance(result := json.loads(path.read_text()).get("result"), dict)
                   and "minFeeReferenceScripts" in result}
    assert conway_keys == {frozenset(params)}  # every Conway vector carries exactly the devnet's 33 keys
    assert len(params) == 33


async def test_cost_models_and_conway_values_are_mainnets_genesis(ogmios_client: Any) -> None:
    """A Conway node reports the plutus:v3 cost model (a strict dApp library refuses to start without it)."""
    params, genesis = await _parameters(ogmios_client), json.loads(CONWAY_GENESIS.read_text())
    models = params["plutusCostModels"]
    assert models["plutus:v3"] == genesis["plutusV3CostModel"] and len(models["plutus:v3"]) == 251
    assert (len(models["plutus:v1"]), len(models["plutus:v2"])) == (166, 175)
    assert params["minFeeReferenceScripts"] == {"base": float(genesis["minFeeRefScriptCostPerByte"]),
                                                "range": 25600, "multiplier": 1.2}
    assert params["maxReferenceScriptsSize"] == {"bytes": 200 * 1024}
    pool, drep = genesis["poolVotingThresholds"], genesis["dRepVotingThresholds"]
    expected_pool = {"noConfidence": pool["motionNoConfidence"],
                     "constitutionalCommittee": {"default": pool["committeeNormal"],
                                                 "stateOfNoConfidence": pool["committeeNoConfidence"]},
                     "hardForkInitiation": pool["hardForkInitiation"],
                     "protocolParametersUpdate": {"security": pool["ppSecurityGroup"]}}
    expected_drep = {"noConfidence": drep["motionNoConfidence"],
                     "constitutionalCommittee": {"default": drep["committeeNormal"],
                                                 "stateOfNoConfidence": drep["committeeNoConfidence"]},
                     "constitution": drep["updateToConstitution"],
                     "hardForkInitiation": drep["hardForkInitiation"],
                     "protocolParametersUpdate": {"network": drep["ppNetworkGroup"],
                                                  "economic": drep["ppEconomicGroup"],
                                                  "technical": drep["ppTechnicalGroup"],
                                                  "governance": drep["ppGovGroup"]},
                     "treasuryWithdrawals": drep["treasuryWithdrawal"]}  # fmt: skip
    for reported, expected in ((params["stakePoolVotingThresholds"], expected_pool),
                               (params["delegateRepresentativeVotingThresholds"], expected_drep)):
        assert _ratios(reported) == _ratios(expected)
    assert (params["constitutionalCommitteeMinSize"], params["constitutionalCommitteeMaxTermLength"],
            params["governanceActionLifetime"], params["delegateRepresentativeMaxIdleTime"]) == (
        genesis["committeeMinSize"], genesis["committeeMaxTermLength"], genesis["govActionLifetime"],
        genesis["dRepActivity"])
    assert params["governanceActionDeposit"] == {"ada": {"lovelace": genesis["govActionDeposit"]}}
    assert params["delegateRepresentativeDeposit"] == {"ada": {"lovelace": genesis["dRepDeposit"]}}


def _ratios(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _ratios(value) for key, value in node.items()}
    return Fraction(str(node))  # "51/100" as Ogmios writes it, 0.51 as the genesis file does


async def test_the_other_values_are_mainnets_current_ones(ogmios_client: Any) -> None:
    """Mainnet's values in the Conway era (epoch 5xx), which the devnet's ledger enforces."""
    params = await _parameters(ogmios_client)
    assert {key: params[key] for key in ("minFeeCoefficient", "minFeeConstant", "minUtxoDepositCoefficient",
                                         "maxTransactionSize", "maxBlockBodySize", "maxValueSize",
                                         "collateralPercentage", "maxCollateralInputs", "version")} == {
        "minFeeCoefficient": 44, "minFeeConstant": {"ada": {"lovelace": 155381}},
        "minUtxoDepositCoefficient": 4310, "maxTransactionSize": {"bytes": 16384},
        "maxBlockBodySize": {"bytes": 90112}, "maxValueSize": {"bytes": 5000}, "collateralPercentage": 150,
        "maxCollateralInputs": 3, "version": {"major": 10, "minor": 0},
    }  # fmt: skip

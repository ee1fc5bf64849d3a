"""Genesis: deterministic keys from the seed, and the JSON the Ogmios queries serve, against the schema."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pycardano import Address, Network, PaymentSigningKey

from devnet.genesis import Genesis
from devnet.ledger.params import ProtocolParameters
from tests.devnet.schemas import cardano_validator

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_keys_are_deterministic_and_usable_by_pycardano() -> None:
    one, two = Genesis(seed="s", system_start=START), Genesis(seed="s", system_start=START)
    assert [k.address for k in one.keys] == [k.address for k in two.keys]
    assert [k.address for k in Genesis(seed="other", system_start=START).keys] != [k.address for k in one.keys]
    for key in one.keys:
        signing = PaymentSigningKey.from_cbor(key.signing_key_cbor_hex())
        assert str(Address(signing.to_verification_key().hash(), network=Network.TESTNET)) == key.address
        assert signing.to_verification_key().payload == key.vkey


def test_state_round_trip() -> None:
    genesis = Genesis(seed="s", system_start=START, extra_funds=[(Genesis(seed="x", system_start=START)
                                                                  .keys[0].address, 5_000_000)])
    again = Genesis.from_state(genesis.to_state())
    assert again.to_state() == genesis.to_state()
    assert again.initial_funds() == genesis.initial_funds()


@pytest.mark.parametrize(("era", "definition"), [("byron", "Genesis<Byron>"), ("shelley", "Genesis<Shelley>"),
                                                 ("alonzo", "Genesis<Alonzo>"), ("conway", "Genesis<Conway>")])
def test_genesis_configuration_matches_the_schema(era: str, definition: str) -> None:
    genesis = Genesis(seed="s", system_start=START)
    document = getattr(genesis, f"{era}_json")(ProtocolParameters())
    errors = list(cardano_validator(definition).iter_errors(document))
    assert not errors, [e.message for e in errors[:3]]


def test_protocol_parameters_match_the_schema_and_mainnet_defaults() -> None:
    params = ProtocolParameters().to_ogmios()
    errors = list(cardano_validator("ProtocolParameters").iter_errors(params))
    assert not errors, [e.message for e in errors[:3]]
    assert params["minFeeCoefficient"] == 44
    assert params["minFeeConstant"] == {"ada": {"lovelace": 155381}}
    assert params["minUtxoDepositCoefficient"] == 4310
    assert params["maxTransactionSize"] == {"bytes": 16384}
    assert params["maxBlockBodySize"] == {"bytes": 90112}


def test_era_summaries_match_the_schema() -> None:
    summaries = Genesis(seed="s", system_start=START).era_summaries()
    assert len(summaries) == 7 and "end" not in summaries[-1]
    errors = [e for s in summaries for e in cardano_validator("EraSummary").iter_errors(s)]
    assert not errors, [e.message for e in errors[:3]]

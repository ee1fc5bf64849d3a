"""Address validation: our bech32 decoder agrees with pycardano and refuses what it must."""

from __future__ import annotations

import pytest
from pycardano import Address, Network, PaymentSigningKey, PaymentVerificationKey, StakeSigningKey
from pycardano.hash import VerificationKeyHash

from indexer.address import bech32_decode, validate_address


def _keys() -> tuple[VerificationKeyHash, VerificationKeyHash]:
    pay = PaymentVerificationKey.from_signing_key(PaymentSigningKey.from_primitive(b"\x01" * 32)).hash()
    stake = StakeSigningKey.from_primitive(b"\x02" * 32).to_verification_key().hash()
    return pay, stake


def test_accepts_base_and_enterprise_addresses_of_the_network() -> None:
    pay, stake = _keys()
    for network, name in ((Network.TESTNET, "testnet"), (Network.MAINNET, "mainnet")):
        for address in (Address(pay, stake, network=network), Address(pay, network=network)):
            assert validate_address(str(address), name) == address.to_primitive()


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda a: a[:-1] + ("q" if a[-1] != "q" else "p"), "checksum"),
    (lambda a: a.replace("addr_test", "addr"), "checksum|prefix"),
    (lambda a: a.upper()[:10] + a[10:], "mixes"),
    (lambda a: "", "empty"),
    (lambda a: "addr_test1" + "q" * 300, "longer"),
    (lambda a: a[:20] + "b" + a[21:], "invalid character|checksum"),
    (lambda a: "not an address", "bech32"),
])
def test_refuses_malformed(mutate, message) -> None:  # type: ignore[no-untyped-def]
    pay, stake = _keys()
    good = str(Address(pay, stake, network=Network.TESTNET))
    with pytest.raises(ValueError, match=message):
        validate_address(mutate(good), "testnet")


def test_refuses_wrong_network_and_stake_addresses() -> None:
    pay, stake = _keys()
    with pytest.raises(ValueError, match="prefix"):
        validate_address(str(Address(pay, network=Network.MAINNET)), "testnet")
    stake_address = str(Address(staking_part=stake, network=Network.TESTNET))
    assert bech32_decode(stake_address)[0] == "stake_test"
    with pytest.raises(ValueError, match="prefix"):
        validate_address(stake_address, "testnet")

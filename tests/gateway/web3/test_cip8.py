"""CIP-8 signData verification: every check, one refusal each, and a real pycardano signature accepted."""

from __future__ import annotations

import cbor2
import pytest
from pycardano import Address, Network, PaymentSigningKey
from pycardano.cip import cip8 as pycardano_cip8

from gateway.web3.address import parse_address
from gateway.web3.cip8 import verify_sign_data
from gateway.web3.errors import InvalidSignature
from tests.gateway.web3.wallet import TestWallet, cose_sign1

CHALLENGE = b"example.org wants you to sign in\nNonce: 00112233445566778899aabbccddeeff"


@pytest.fixture
def wallet() -> TestWallet:
    return TestWallet()


def _addr(wallet: TestWallet):
    return parse_address(wallet.bech32, 0)


def test_wallet_signature_over_the_challenge_verifies(wallet: TestWallet) -> None:
    answer = wallet.sign_data(CHALLENGE.hex())
    signed = verify_sign_data(answer["signature"], answer["key"], _addr(wallet), CHALLENGE)
    assert signed.vkey == bytes(wallet.payment.to_verification_key().payload)
    assert not signed.hashed


def test_tagged_cose_sign1_and_hex_address_accepted(wallet: TestWallet) -> None:
    answer = wallet.sign_data(CHALLENGE.hex(), tagged=True)
    verify_sign_data(answer["signature"], answer["key"], parse_address(wallet.raw.hex(), 0), CHALLENGE)


def test_pycardano_cip8_sign_is_accepted() -> None:
    key = PaymentSigningKey.generate()
    address = Address(key.to_verification_key().hash(), network=Network.TESTNET)
    answer = pycardano_cip8.sign(CHALLENGE.decode(), key, attach_cose_key=True, network=Network.TESTNET)
    assert isinstance(answer, dict)
    verify_sign_data(answer["signature"], answer["key"], parse_address(str(address), 0), CHALLENGE)


def test_hashed_payload_checked_against_the_challenge_hash(wallet: TestWallet) -> None:
    answer = wallet.sign_data(CHALLENGE.hex(), hashed=True)
    assert verify_sign_data(answer["signature"], answer["key"], _addr(wallet), CHALLENGE).hashed
    with pytest.raises(InvalidSignature, match="not the challenge"):
        verify_sign_data(answer["signature"], answer["key"], _addr(wallet), CHALLENGE + b"x")


def test_other_payload_refused(wallet: TestWallet) -> None:
    answer = wallet.sign_data(b"something else".hex())
    with pytest.raises(InvalidSignature, match="not the challenge"):
        verify_sign_data(answer["signature"], answer["key"], _addr(wallet), CHALLENGE)


def test_forged_signature_refused(wallet: TestWallet) -> None:
    answer = wallet.sign_data(CHALLENGE.hex())
    message = cbor2.loads(bytes.fromhex(answer["signature"]))
    message[3] = bytes(64 - 1) + b"\x01"
    with pytest.raises(InvalidSignature, match="does not verify"):
        verify_sign_data(cbor2.dumps(message).hex(), answer["key"], _addr(wallet), CHALLENGE)


def test_payload_swapped_after_signing_refused(wallet: TestWallet) -> None:
    answer = wallet.sign_data(b"harmless".hex())
    message = cbor2.loads(bytes.fromhex(answer["signature"]))
    message[2] = CHALLENGE
    with pytest.raises(InvalidSignature, match="does not verify"):
        verify_sign_data(cbor2.dumps(message).hex(), answer["key"], _addr(wallet), CHALLENGE)


def test_stake_key_signature_refused(wallet: TestWallet) -> None:
    answer = wallet.sign_data_with_stake_key(CHALLENGE.hex())
    with pytest.raises(InvalidSignature, match="payment key"):
        verify_sign_data(answer["signature"], answer["key"], _addr(wallet), CHALLENGE)


def test_another_address_in_the_header_refused(wallet: TestWallet) -> None:
    other = TestWallet()
    answer = other.sign_data(CHALLENGE.hex())
    with pytest.raises(InvalidSignature, match="another address"):
        verify_sign_data(answer["signature"], answer["key"], _addr(wallet), CHALLENGE)


def test_foreign_key_claiming_the_address_refused(wallet: TestWallet) -> None:
    attacker = PaymentSigningKey.generate()
    answer = cose_sign1(bytes(attacker.payload), wallet.raw, CHALLENGE)
    with pytest.raises(InvalidSignature, match="payment key"):
        verify_sign_data(answer["signature"], answer["key"], _addr(wallet), CHALLENGE)


def test_wrong_alg_refused(wallet: TestWallet) -> None:
    answer = wallet.sign_data(CHALLENGE.hex(), alg=-7)
    with pytest.raises(InvalidSignature, match="alg must be EdDSA"):
        verify_sign_data(answer["signature"], answer["key"], _addr(wallet), CHALLENGE)


@pytest.mark.parametrize(("key", "reason"), [
    ({1: 2, -1: 6}, "kty"),
    ({1: 1, -1: 1}, "crv"),
    ({1: 1, -1: 6, 3: -7}, "alg"),
    ({1: 1, -1: 6, -2: b"\x00" * 31}, "32-byte"),
])
def test_bad_cose_key_refused(wallet: TestWallet, key: dict[int, object], reason: str) -> None:
    answer = wallet.sign_data(CHALLENGE.hex())
    with pytest.raises(InvalidSignature, match=reason):
        verify_sign_data(answer["signature"], cbor2.dumps(key).hex(), _addr(wallet), CHALLENGE)


@pytest.mark.parametrize("signature", [
    "", "zz", "ff" * 5000, cbor2.dumps([1, 2, 3]).hex(), cbor2.dumps(cbor2.CBORTag(98, [])).hex(),
    cbor2.dumps([b"", {}, None, b"\x00" * 64]).hex(), cbor2.dumps([b"", {}, b"x", b"\x00" * 10]).hex(),
    cbor2.dumps([cbor2.dumps([1]), {}, b"x", b"\x00" * 64]).hex(), "9f",
])
def test_malformed_signature_refused(wallet: TestWallet, signature: str) -> None:
    key = wallet.sign_data(CHALLENGE.hex())["key"]
    with pytest.raises(InvalidSignature):
        verify_sign_data(signature, key, _addr(wallet), CHALLENGE)

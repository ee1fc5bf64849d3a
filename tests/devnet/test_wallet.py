"""Devnet test wallets (devnet/wallet.py): the server half of the studio page's CIP-30 wallet.

A real devnet process; the wallet's answers are checked the way a dApp would use them: its UTxOs decode
as TransactionUnspentOutput, its witness set signs the body hash of a tx that the devnet then accepts,
and its signData verifies as CIP-8 with the key that matches the address it was asked for.
"""

from __future__ import annotations

import hashlib

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pycardano import Address, UTxO
from pycardano.cip.cip8 import verify

from tests.support.devnet_fixture import DevnetProcess

POLICY = "ab" * 28
ASSET = f"{POLICY}.{b'CREATE'.hex()}"


@pytest.fixture
def wallet(devnet: DevnetProcess) -> dict:
    status, info = devnet.request("POST", "/devnet/wallets/alice")
    assert status == 200, info
    devnet.fund(info["address"], 20_000_000, {ASSET: 5})
    devnet.blocks()
    return info


def test_wallet_is_a_base_address_with_its_reward_address(devnet: DevnetProcess, wallet: dict) -> None:
    address = Address.from_primitive(bytes.fromhex(wallet["address_hex"]))
    assert str(address) == wallet["address"] and address.staking_part is not None
    assert wallet["reward_address_hex"][:2] == "e0"  # testnet reward address header
    status, again = devnet.request("POST", "/devnet/wallets/alice")
    assert status == 200 and again == wallet  # derived from the seed: the same wallet every time


def test_utxos_and_balance_are_cip30_cbor(devnet: DevnetProcess, wallet: dict) -> None:
    _, utxos = devnet.request("GET", "/devnet/wallets/alice/utxos")
    decoded = [UTxO.from_cbor(bytes.fromhex(u)) for u in utxos["utxos"]]
    assert len(decoded) == 1 and decoded[0].output.amount.coin == 20_000_000
    _, balance = devnet.request("GET", "/devnet/wallets/alice/balance")
    coin, multi = cbor2.loads(bytes.fromhex(balance["balance"]))
    assert coin == 20_000_000 and multi == {bytes.fromhex(POLICY): {b"CREATE": 5}}


def test_sign_tx_returns_only_its_own_witness_and_the_devnet_accepts_the_spliced_tx(
        devnet: DevnetProcess, wallet: dict) -> None:
    _, utxos = devnet.request("GET", "/devnet/wallets/alice/utxos")
    utxo = UTxO.from_cbor(bytes.fromhex(utxos["utxos"][0]))
    fee = 200_000
    body = {0: [[utxo.input.transaction_id.payload, utxo.input.index]],
            1: [[bytes.fromhex(wallet["address_hex"]),
                 [20_000_000 - fee, {bytes.fromhex(POLICY): {b"CREATE": 5}}]]],
            2: fee}
    body_bytes = cbor2.dumps(body)
    unsigned = b"\x84" + body_bytes + b"\xa0\xf5\xf6"
    status, signed = devnet.request("POST", "/devnet/wallets/alice/sign-tx",
                                    {"tx": unsigned.hex(), "partial_sign": True})
    assert status == 200, signed
    witnesses = cbor2.loads(bytes.fromhex(signed["witness_set"]))
    assert list(witnesses) == [0] and len(witnesses[0]) == 1
    vkey, signature = witnesses[0][0]
    Ed25519PublicKey.from_public_bytes(vkey).verify(signature, hashlib.blake2b(body_bytes, digest_size=32).digest())
    tx = b"\x84" + body_bytes + bytes.fromhex(signed["witness_set"]) + b"\xf5\xf6"  # body bytes untouched
    status, submitted = devnet.request("POST", "/devnet/wallets/alice/submit-tx", {"tx": tx.hex()})
    assert status == 200, submitted
    assert submitted["tx_id"] == hashlib.blake2b(body_bytes, digest_size=32).hexdigest()


def test_sign_tx_refuses_a_tx_that_needs_none_of_its_keys(devnet: DevnetProcess, wallet: dict) -> None:
    other = devnet.genesis_key(0)["address"]
    devnet.fund(other, 3_000_000)
    devnet.blocks()
    body_bytes = cbor2.dumps({0: [[b"\x11" * 32, 0]], 1: [], 2: 200_000})
    status, problem = devnet.request("POST", "/devnet/wallets/alice/sign-tx",
                                     {"tx": (b"\x84" + body_bytes + b"\xa0\xf5\xf6").hex(), "partial_sign": True})
    assert status == 400 and problem["code"] == "proof_generation"


def test_sign_data_is_cip8_with_the_key_of_the_address_asked(devnet: DevnetProcess, wallet: dict) -> None:
    payload = b"sign in to the studio".hex()
    _, signed = devnet.request("POST", "/devnet/wallets/alice/sign-data",
                               {"address": wallet["address_hex"], "payload": payload})
    result = verify({"signature": signed["signature"], "key": signed["key"]})
    assert result["verified"] and result["message"] == "sign in to the studio"
    key_x = cbor2.loads(bytes.fromhex(signed["key"]))[-2]
    assert hashlib.blake2b(key_x, digest_size=28).digest() == bytes.fromhex(wallet["address_hex"])[1:29]
    _, staked = devnet.request("POST", "/devnet/wallets/alice/sign-data",
                               {"address": wallet["reward_address_hex"], "payload": payload})
    stake_x = cbor2.loads(bytes.fromhex(staked["key"]))[-2]
    assert hashlib.blake2b(stake_x, digest_size=28).digest() == bytes.fromhex(wallet["address_hex"])[29:]
    status, problem = devnet.request("POST", "/devnet/wallets/alice/sign-data",
                                     {"address": "00" + "11" * 56, "payload": payload})
    assert status == 400 and problem["code"] == "address_not_pk"


@pytest.mark.parametrize(("path", "body", "code"), [
    ("/devnet/wallets/bad%20name", None, "invalid_name"),
    ("/devnet/wallets/alice/sign-tx", {"tx": "zz"}, "invalid_field"),
    ("/devnet/wallets/alice/sign-tx", {"tx": "00", "partial_sign": "yes"}, "invalid_field"),
    ("/devnet/wallets/alice/sign-tx", {"tx": "00"}, "invalid_tx"),
    ("/devnet/wallets/alice/submit-tx", {"tx": "8400"}, "tx_rejected"),
])
def test_bad_input_is_a_clear_problem(devnet: DevnetProcess, path: str, body: object, code: str) -> None:
    status, problem = devnet.request("POST", path, body)
    assert status == 400 and problem["code"] == code, problem

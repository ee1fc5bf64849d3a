from __future__ import annotations

import pytest
from pycardano import Address, Network, PaymentSigningKey, ScriptAny, ScriptPubkey

from signer.chain import (
    bech32_decode,
    bech32_encode,
    enterprise_address,
    key_hash,
    script_hash,
    script_sig,
    unspendable_script,
)


def test_matches_pycardano() -> None:
    vkey = PaymentSigningKey.generate().to_verification_key()
    assert key_hash(vkey.payload) == vkey.hash().payload
    assert script_hash(script_sig(vkey.hash().payload)) == ScriptPubkey(vkey.hash()).hash().payload
    sink = ScriptAny([])
    assert script_hash(unspendable_script()) == sink.hash().payload
    for network_id, network in ((0, Network.TESTNET), (1, Network.MAINNET)):
        expected = Address(payment_part=sink.hash(), network=network)
        raw = enterprise_address(sink.hash().payload, network_id, script=True)
        assert raw == bytes(expected)
        assert bech32_encode("addr" if network_id else "addr_test", raw) == str(expected)
        key_addr = Address(payment_part=vkey.hash(), network=network)
        assert enterprise_address(vkey.hash().payload, network_id, script=False) == bytes(key_addr)


def test_bech32_round_trip_and_checksum() -> None:
    text = bech32_encode("addr_test", b"\x70" + b"\x01" * 28)
    assert bech32_decode(text) == ("addr_test", b"\x70" + b"\x01" * 28)
    broken = text[:-1] + ("q" if text[-1] != "q" else "p")
    with pytest.raises(ValueError):
        bech32_decode(broken)


def test_sink_addresses_in_the_readme() -> None:
    sink = script_hash(unspendable_script())
    assert sink.hex() == "52dc3d43b6d2465e96109ce75ab61abe5e9c1d8a3c9ce6ff8a3af528"
    assert bech32_encode("addr", enterprise_address(sink, 1, script=True)) == \
        "addr1w9fdc02rkmfyvh5kzzwwwk4kr2l9a8qa3g7feehl3ga022qz2249g"
    assert bech32_encode("addr_test", enterprise_address(sink, 0, script=True)) == \
        "addr_test1wpfdc02rkmfyvh5kzzwwwk4kr2l9a8qa3g7feehl3ga022qez7f2d"

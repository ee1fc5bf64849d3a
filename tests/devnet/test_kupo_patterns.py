"""Kupo pattern parsing, matching, inclusion and overlap."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest

from devnet.kupo.patterns import PatternError, includes, overlaps, parse_pattern
from devnet.ogmios.encoding import base58_encode, bech32_encode

PAY = bytes(range(28))
STAKE = bytes(range(100, 128))
VKEY = bytes(range(32))
BASE = b"\x00" + PAY + STAKE  # testnet base address, key/key
ENTERPRISE = b"\x60" + PAY
POLICY = "ab" * 28
TX = "cd" * 32


@dataclass
class Out:
    address_bytes: bytes
    assets: dict = field(default_factory=dict)


def test_parse_every_form() -> None:
    assert parse_pattern("*").kind == "any"
    assert parse_pattern("*/*").kind == "any_shelley"
    assert parse_pattern(bech32_encode("addr_test", BASE)).first == BASE
    assert parse_pattern(BASE.hex()).first == BASE
    assert parse_pattern(bech32_encode("stake_test", b"\xe0" + STAKE)).second == STAKE
    assert parse_pattern(f"{PAY.hex()}/*").first == PAY
    assert parse_pattern(f"*/{STAKE.hex()}").second == STAKE
    key_hash = hashlib.blake2b(VKEY, digest_size=28).digest()
    assert parse_pattern(f"{VKEY.hex()}/*").first == key_hash
    assert parse_pattern(f"{bech32_encode('addr_vk', VKEY)}/*").first == key_hash
    assert parse_pattern(f"{bech32_encode('addr_vkh', PAY)}/{bech32_encode('stake_vkh', STAKE)}").key() == (
        "payment_delegation", PAY, STAKE,
    )  # fmt: skip
    assert parse_pattern(f"{bech32_encode('script', PAY)}/*").first == PAY
    assert parse_pattern(f"{POLICY}.*").kind == "policy"
    assert parse_pattern(f"{POLICY}.4142").key() == ("asset", POLICY, "4142")
    assert parse_pattern(f"3@{TX}").key() == ("out_ref", TX, 3)
    assert parse_pattern(f"*@{TX}").key() == ("transaction", TX, None)
    byron = bytes.fromhex("82d818582183581c" + "11" * 28 + "a0001a12345678")
    assert parse_pattern(base58_encode(byron)).first == byron


@pytest.mark.parametrize(
    "text",
    ["", "**", "*/", "/*", "xyz", f"{POLICY}.zz", f"{POLICY[:-2]}.*", f"x@{TX}", f"1@{TX[:-2]}", "ab/cd",
     f"{bech32_encode('stake_vk', VKEY)[:-1]}x/*", "a" * 600, bech32_encode("stake_test", b"\xe0" + STAKE) + "/*"],
)  # fmt: skip
def test_bad_patterns(text: str) -> None:
    with pytest.raises(PatternError):
        parse_pattern(text)


def test_matching() -> None:
    base, enterprise = Out(BASE, {POLICY: {"4142": 1}}), Out(ENTERPRISE)
    byron = Out(bytes.fromhex("82d818582183581c" + "11" * 28 + "a0001a12345678"))
    cases = {
        "*": (True, True, True),
        "*/*": (True, True, False),
        f"{PAY.hex()}/*": (True, True, False),
        f"*/{STAKE.hex()}": (True, False, False),
        f"{PAY.hex()}/{STAKE.hex()}": (True, False, False),
        bech32_encode("addr_test", ENTERPRISE): (False, True, False),
        f"{POLICY}.*": (True, False, False),
        f"{POLICY}.4142": (True, False, False),
        f"{POLICY}.4143": (False, False, False),
    }
    for text, expected in cases.items():
        pattern = parse_pattern(text)
        assert tuple(pattern.matches(TX, 0, o) for o in (base, enterprise, byron)) == expected, text
    assert parse_pattern(f"0@{TX}").matches(TX, 0, base)
    assert not parse_pattern(f"1@{TX}").matches(TX, 0, base)
    assert parse_pattern(f"*@{TX}").matches(TX, 5, base)


def test_inclusion_and_overlap() -> None:
    star, shelley = parse_pattern("*"), parse_pattern("*/*")
    payment, both = parse_pattern(f"{PAY.hex()}/*"), parse_pattern(f"{PAY.hex()}/{STAKE.hex()}")
    exact = parse_pattern(BASE.hex())
    policy, asset = parse_pattern(f"{POLICY}.*"), parse_pattern(f"{POLICY}.41")
    assert includes(star, policy) and includes(shelley, payment) and not includes(shelley, star)
    assert includes(payment, both) and includes(payment, exact) and not includes(both, payment)
    assert includes(policy, asset) and not includes(asset, policy)
    assert includes(parse_pattern(f"*@{TX}"), parse_pattern(f"2@{TX}"))
    assert overlaps(exact, [payment]) and overlaps(payment, [star]) and overlaps(asset, [policy])
    assert not overlaps(policy, [payment]) and not overlaps(payment, [parse_pattern(f"{STAKE.hex()}/*")])

import pytest

from common import bech32

# BIP-173 valid vectors (checksum only; Cardano lifts the 90-character limit)
VALID = ["A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
         "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w"]
# CIP-19 test vector: enterprise address, testnet, key hash
CIP19_ADDR = "addr_test1vz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzerspjrlsz"
CIP19_BYTES = bytes.fromhex("60" + "9493315cd92eb5d8c4304e67b7e16ae36d61d34502694657811a2c8e")


@pytest.mark.parametrize("text", VALID)
def test_bip173_valid_strings_decode(text):
    hrp, _ = bech32.decode(text)
    assert hrp == text.lower().rpartition("1")[0]


def test_cardano_address_round_trip():
    assert bech32.decode(CIP19_ADDR) == ("addr_test", CIP19_BYTES)
    assert bech32.encode("addr_test", CIP19_BYTES) == CIP19_ADDR


def test_long_strings_beyond_bip173_limit_round_trip():
    data = bytes(range(200))
    text = bech32.encode("addr", data)
    assert len(text) > 90
    assert bech32.decode(text) == ("addr", data)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("A12uEL5L", "mixes upper and lower case"),
        ("pzry9x0s0muk", "no separator or too short"),
        ("1pzry9x0s0muk", "no separator or too short"),
        ("x1b4n0q5v", "invalid character 'b'"),
        ("li1dgmt3", "no separator or too short"),
        (CIP19_ADDR[:-1] + ("q" if CIP19_ADDR[-1] != "q" else "p"), "checksum is wrong"),
        ("a" * 2000, "longer than 1023"),
    ],
)
def test_invalid_strings_say_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        bech32.decode(text)


def test_bad_prefix_is_refused_on_encode():
    with pytest.raises(ValueError, match="invalid bech32 prefix"):
        bech32.encode("", b"\x00")

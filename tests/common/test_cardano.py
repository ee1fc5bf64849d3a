from decimal import Decimal

import pytest

from common.cardano import AssetId, Value, ada_to_lovelace, is_hex, lovelace_to_ada, validate_tx_id

POLICY = "a0" * 28
OTHER = "b1" * 28


def test_parse_dotted_concatenated_and_bare_forms():
    assert AssetId.parse(f"{POLICY}.435245415445") == AssetId(POLICY, "435245415445")
    assert AssetId.parse(f"{POLICY}435245415445") == AssetId(POLICY, "435245415445")
    assert AssetId.parse(POLICY) == AssetId(POLICY, "")
    assert AssetId.parse(f"  {POLICY.upper()}.4142 ") == AssetId(POLICY, "4142")


def test_from_name_and_rendering():
    asset = AssetId.from_name(POLICY, "CREATE")
    assert asset.asset_name == "435245415445"
    assert asset.unit == POLICY + "435245415445"
    assert str(asset) == f"{POLICY}.435245415445"
    assert asset.name_bytes == b"CREATE"
    assert str(AssetId(POLICY)) == POLICY


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "must start with a 56-hex policy id"),
        ("abc", "must start with a 56-hex policy id"),
        ("zz" * 28, "policy id must be 56 lowercase hex"),
        (f"{POLICY[:-2]}.41", "policy id must be 56"),
        (f"{POLICY}.4", "asset name must be hex"),
        (f"{POLICY}.xyz0", "asset name must be hex"),
        (f"{POLICY}." + "41" * 33, "at most 32 bytes"),
    ],
)
def test_bad_asset_ids_are_refused_with_a_reason(text, needle):
    with pytest.raises(ValueError, match=needle):
        AssetId.parse(text)


def test_same_name_under_another_policy_is_a_different_asset():
    assert AssetId.from_name(POLICY, "CREATE") != AssetId.from_name(OTHER, "CREATE")
    v = Value(2_000_000, {AssetId.from_name(OTHER, "CREATE"): 5})
    assert v.quantity(AssetId.from_name(POLICY, "CREATE")) == 0


def test_value_arithmetic():
    create = AssetId.from_name(POLICY, "CREATE")
    a = Value(5_000_000, {create: 10})
    b = Value(1_500_000, {create: 3})
    assert a + b == Value(6_500_000, {create: 13})
    assert a - b == Value(3_500_000, {create: 7})
    assert (a - Value(0, {create: 10})).assets == {}
    assert a.covers(b) and not b.covers(a)
    assert Value.total([a, b, b]) == Value(8_000_000, {create: 16})
    with pytest.raises(ValueError, match="insufficient"):
        b - a
    with pytest.raises(ValueError, match="lovelace must be between"):
        Value(-1)
    with pytest.raises(ValueError, match="must be an integer"):
        Value(1.5)  # type: ignore[arg-type]


def test_lovelace_conversions_are_exact():
    assert ada_to_lovelace("1.5") == 1_500_000
    assert ada_to_lovelace(2) == 2_000_000
    assert ada_to_lovelace("0.000001") == 1
    assert lovelace_to_ada(1_500_000) == Decimal("1.5")
    for bad in ("0.0000001", "-1", "one"):
        with pytest.raises(ValueError):
            ada_to_lovelace(bad)


def test_hex_and_tx_id_validation():
    assert is_hex("00ff") and is_hex("") and not is_hex("0") and not is_hex("00FF") and not is_hex("xx")
    assert is_hex("ab" * 32, 64) and not is_hex("ab" * 31, 64)
    assert validate_tx_id("cd" * 32) == "cd" * 32
    with pytest.raises(ValueError, match="64 lowercase hex"):
        validate_tx_id("cd" * 31)

"""common.commitment: the label-1967 codec, built and read back, and every strictness rule."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from common.commitment import (
    COMMITMENT_LABEL,
    MESSAGE_LABEL,
    Commitment,
    CommitmentError,
    commitment_for,
    commitment_metadata,
    parse_commitment,
    parse_metadata,
)
from common.merkle import merkle_root

IDS = ["gen-1", "gen-2", "gen-3"]
ROOT_HEX = "9e95045c11b1ca3a1bfefb072921461b8208af1bfc2dff48f0d33d2f614330d2"


def test_build_matches_the_pinned_form() -> None:
    commitment = commitment_for(IDS)
    assert commitment == Commitment(3, bytes.fromhex(ROOT_HEX))
    assert commitment_metadata(commitment) == {1967: {"v": 1, "n": 3, "root": ROOT_HEX}}
    assert commitment_metadata(commitment, ["creatorpass burn"]) == {
        1967: {"v": 1, "n": 3, "root": ROOT_HEX}, 674: {"msg": ["creatorpass burn"]}}


def test_round_trip_through_cbor() -> None:
    commitment = commitment_for(IDS)
    decoded = cbor2.loads(cbor2.dumps(commitment_metadata(commitment, ["hello"])))
    assert parse_metadata(decoded) == commitment


def test_build_refuses_what_it_could_not_read() -> None:
    with pytest.raises(ValueError):
        commitment_metadata(Commitment(0, merkle_root(IDS)))
    with pytest.raises(ValueError):
        commitment_metadata(Commitment(1, b"short"))
    with pytest.raises(CommitmentError):
        commitment_metadata(commitment_for(IDS), ["x" * 65])


GOOD: dict[str, Any] = {"v": 1, "n": 3, "root": ROOT_HEX}


@pytest.mark.parametrize("value, needle", [
    ({**GOOD, "v": True}, "version"),  # True == 1 in Python, not on the chain
    ({**GOOD, "v": 2}, "version"),
    ({**GOOD, "n": True}, "count"),
    ({**GOOD, "n": 0}, "count"),
    ({**GOOD, "n": "3"}, "count"),
    ({**GOOD, "root": ROOT_HEX.upper()}, "lowercase"),
    ({**GOOD, "root": ROOT_HEX[:-2]}, "64"),
    ({**GOOD, "root": "zz" * 32}, "not hex"),
    ({**GOOD, "root": bytes.fromhex(ROOT_HEX)}, "64"),
    ({**GOOD, "extra": 1}, "must be"),
    ({"v": 1, "n": 3}, "must be"),
    ([1, 3, ROOT_HEX], "must be"),
])
def test_label_value_strictness(value: Any, needle: str) -> None:
    with pytest.raises(CommitmentError, match=needle):
        parse_commitment(value)


@pytest.mark.parametrize("metadata, needle", [
    ({}, "missing"),
    ({COMMITMENT_LABEL: GOOD, 1: "x"}, "labels 1 are not allowed"),
    ({COMMITMENT_LABEL: GOOD, "1967": GOOD}, "unsigned integers"),
    ({COMMITMENT_LABEL: GOOD, True: GOOD}, "unsigned integers"),
    ({COMMITMENT_LABEL: GOOD, MESSAGE_LABEL: {"msg": "not a list"}}, "674"),
    ({COMMITMENT_LABEL: GOOD, MESSAGE_LABEL: {"msg": ["x" * 65]}}, "674"),
    ({COMMITMENT_LABEL: GOOD, MESSAGE_LABEL: {"msg": [1]}}, "674"),
    ([COMMITMENT_LABEL, GOOD], "map of labels"),
])
def test_metadata_strictness(metadata: Any, needle: str) -> None:
    with pytest.raises(CommitmentError, match=needle):
        parse_metadata(metadata)

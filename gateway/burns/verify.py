"""Checking burns against the chain with nothing but the indexer: receipts and reconcile's on-chain check.

The receipt algorithm (also in gateway/burns/README.md, so it can be done by hand with an explorer):

1. ``leaf == blake2b-256(0x00 || utf8(generation_id))``;
2. folding the proof from the leaf (``L``: ``H(0x01 || sibling || node)``, ``R``: ``H(0x01 || node || sibling)``)
   gives ``root``, and the sides are the ones leaf ``index`` of a ``count``-leaf tree must have;
3. the tx ``tx_id`` is on chain, its metadata label 1967 is exactly ``{"v": 1, "n": count, "root": root}``;
4. the tx burns ``count`` tokens: a negative mint of ``count`` of one asset (mint mode), or ``count``
   of it paid to the unspendable ``any of []`` script address (address mode);
5. its depth (blocks including its own) is reported; the receipt is final at the operator's depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common import merkle
from common.cardano import AssetId
from common.commitment import COMMITMENT_LABEL, CommitmentError, parse_commitment
from gateway.web3.chain import Chain, ChainTx, TxState

__all__ = ["SINK_SCRIPT_HASH", "Verdict", "burned_by", "expected_sides", "verify_receipt"]

SINK_SCRIPT_HASH = "52dc3d43b6d2465e96109ce75ab61abe5e9c1d8a3c9ce6ff8a3af528"  # native script "any of []"


@dataclass
class Verdict:
    ok: bool = True
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    depth: int = 0
    block_height: int = 0

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append((name, passed, detail))
        self.ok = self.ok and passed
        return passed


def expected_sides(index: int, count: int) -> list[str]:
    """The proof sides leaf ``index`` has in a ``count``-leaf tree (promoted levels add no step)."""
    sides: list[str] = []
    width = count
    while width > 1:
        sibling = index ^ 1
        if sibling < width:
            sides.append("L" if sibling < index else "R")
        index //= 2
        width = (width + 1) // 2
    return sides


def _is_sink(address: str) -> bool:
    from common import bech32

    try:
        _hrp, raw = bech32.decode(address)
    except ValueError:
        return False
    return len(raw) == 29 and raw[0] >> 4 == 7 and raw[1:].hex() == SINK_SCRIPT_HASH


def burned_by(tx: ChainTx, asset: AssetId | None = None) -> tuple[int, str]:
    """(tokens the tx burned, how): its negative mint, else what it paid to the 'any of []' sink."""
    negative = {a: -q for a, q in tx.mint.items() if q < 0 and (asset is None or a == asset)}
    if negative:
        if len(negative) > 1:
            return sum(negative.values()), "negative mint of several assets"
        [(burned_asset, qty)] = negative.items()
        return qty, f"negative mint of {burned_asset}"
    sunk = 0
    for out in tx.outputs:
        if _is_sink(out.address):
            sunk += sum(q for a, q in out.value.assets.items() if asset is None or a == asset)
    return sunk, "sent to the unspendable sink"


def _proof_checks(verdict: Verdict, receipt: dict[str, Any]) -> None:
    gen, index, count = receipt.get("generation_id"), receipt.get("index"), receipt.get("count")
    if not (isinstance(gen, str) and type(index) is int and type(count) is int and 0 <= index < count):
        verdict.check("receipt fields", False, "generation_id (text), index and count (integers, index < count)")
        return
    try:
        steps = merkle.proof_from_json(receipt.get("proof"))
        root = bytes.fromhex(str(receipt.get("root")))
    except ValueError as exc:
        verdict.check("receipt fields", False, str(exc))
        return
    leaf = merkle.leaf_hash(gen)
    verdict.check("leaf", receipt.get("leaf") == leaf.hex(), "blake2b-256(0x00 || generation id)")
    verdict.check("proof", merkle.verify_proof(leaf, steps, root), "the proof folds the leaf into the root")
    verdict.check("index", [s for s, _ in steps] == expected_sides(index, count),
                  f"the proof's sides are those of leaf {index} of {count}")


async def verify_receipt(receipt: dict[str, Any], chain: Chain) -> Verdict:
    verdict = Verdict()
    _proof_checks(verdict, receipt)
    tx_id = str(receipt.get("tx_id", ""))
    try:
        tx = await chain.transaction(tx_id)
    except Exception as exc:
        verdict.check("transaction on chain", False, f"{type(exc).__name__}: {exc}")
        return verdict
    try:
        commitment = parse_commitment(tx.label_json(COMMITMENT_LABEL))
        verdict.check("metadata 1967", commitment.count == receipt.get("count")
                      and commitment.root.hex() == receipt.get("root"),
                      f"on chain n={commitment.count} root={commitment.root.hex()}")
    except CommitmentError as exc:
        verdict.check("metadata 1967", False, str(exc))
    asset = None
    raw_asset = receipt.get("asset")
    if isinstance(raw_asset, dict):
        try:
            asset = AssetId(str(raw_asset.get("policy_id")), str(raw_asset.get("asset_name")))
        except ValueError:
            asset = None
    burned, how = burned_by(tx, asset)
    verdict.check("tokens burned", burned == receipt.get("count"), f"{burned} ({how})")
    status = await chain.tx_status(tx_id)
    verdict.depth, verdict.block_height = status.depth, status.block_height
    verdict.check("confirmed", status.state == TxState.CONFIRMED and status.depth >= 1,
                  f"{status.state} at depth {status.depth}, block {status.block_height}")
    return verdict


def render(verdict: Verdict, receipt: dict[str, Any]) -> str:
    lines = [f"receipt {'VERIFIED' if verdict.ok else 'NOT VERIFIED'}: generation {receipt.get('generation_id')}"
             f" in burn {receipt.get('tx_id')} (depth {verdict.depth})"]
    lines += [f"  [{'ok' if passed else 'FAIL'}] {name}: {detail}" for name, passed, detail in verdict.checks]
    return "\n".join(lines)


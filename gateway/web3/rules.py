"""What makes a transaction on chain the payment for a quote — checked against the chain, never the client.

``payment_problem`` answers the rules that hold forever once the tx is in a block: it pays at least
``price`` units of the exact asset (policy id + asset name) to the exact pay-to address, it carries
the quote's payment reference (``payment_ref(quote id)``) under label 1968, and its block came
before the quote expired. A tx the artist built by hand passes if it meets them; the tx id need not
be the one the quote was built with.
``depth_verdict`` answers where the tx stands: releasable at ``min_confirmations``, pending before,
or gone. Redemption (each tx and each quote once) is the store's unique constraints.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.cardano import AssetId
from gateway.web3.chain import ChainTx, TxState, TxStatus
from gateway.web3.txbuild import QUOTE_LABEL, payment_ref

__all__ = ["Expectation", "Verdict", "depth_verdict", "payment_problem", "quote_id_of"]


@dataclass(frozen=True)
class Expectation:
    quote_id: str
    pay_to: str  # bech32
    asset: AssetId
    price: int
    expires_slot: int  # the block must be at a slot below this (the quote tx's TTL)


@dataclass(frozen=True)
class Verdict:
    state: str  # "releasable", "pending", "rolled_back", "unknown"
    depth: int
    detail: str


def quote_id_of(tx: ChainTx) -> str | None:
    """The payment reference the tx carries under label 1968 (``payment_ref`` of a quote id), or None."""
    entry = tx.label_json(QUOTE_LABEL)
    if isinstance(entry, dict) and isinstance(entry.get("quote"), str):
        return str(entry["quote"])
    return None


def payment_problem(tx: ChainTx, expect: Expectation) -> str | None:
    """None when ``tx`` is a valid payment for the quote; else the first rule it breaks, in words."""
    paid_to = sum(o.value.quantity(expect.asset) for o in tx.outputs if o.address == expect.pay_to)
    if paid_to < expect.price:
        same_name_elsewhere = any(a.asset_name == expect.asset.asset_name and a != expect.asset
                                  for o in tx.outputs for a in o.value.assets)
        if same_name_elsewhere and paid_to == 0:
            return ("the transaction pays a token with the right name under another policy, not "
                    f"{expect.asset}")
        if any(o.value.quantity(expect.asset) for o in tx.outputs):
            return f"the transaction pays $CREATE to another address, not {expect.pay_to}"
        return f"the transaction pays {paid_to} of {expect.price} $CREATE ({expect.asset}) to {expect.pay_to}"
    quote_id = quote_id_of(tx)
    if quote_id is None:
        return f"the transaction carries no quote id (metadata label {QUOTE_LABEL} {{\"quote\": ref}})"
    if quote_id != payment_ref(expect.quote_id):
        return "the transaction carries another quote's id"
    if tx.block_slot >= expect.expires_slot:
        return (f"the transaction was included at slot {tx.block_slot}, after the quote expired"
                f" (slot {expect.expires_slot})")
    return None


def depth_verdict(status: TxStatus, min_confirmations: int) -> Verdict:
    if status.state == TxState.CONFIRMED:
        if status.depth >= min_confirmations:
            return Verdict("releasable", status.depth, f"{status.depth} blocks deep")
        return Verdict("pending", status.depth, f"{status.depth} of {min_confirmations} blocks deep")
    if status.state == TxState.MEMPOOL:
        return Verdict("pending", 0, "in the mempool")
    if status.state == TxState.ROLLED_BACK:
        return Verdict("rolled_back", 0, "its block was rolled back")
    return Verdict("unknown", 0, "the chain does not know this transaction")

"""The re-sign rule: when generation ids signed before may be signed again, in a new transaction.

A burn that expired unconfirmed must be rebuilt, and its generation ids signed again. The signer has no
chain access, so it cannot know that the earlier transaction did not land; instead it makes sure that
**at most one of them can ever land**, whatever a compromised caller claims:

- the new transaction spends at least one input of **every** earlier transaction that named any of its
  ids (not only the latest: if only the latest were required, a chain D → E → N in which D landed and E
  shares with N an input D does not have would let N burn D's ids twice). Two transactions spending
  the same input are mutually exclusive on the ledger;
- every such earlier transaction's TTL has passed by the caller's slot (``current_slot ≥ ttl``: the
  ledger no longer accepts it), and that slot is itself bounded by the signer's clock
  (``signer.policy.check_slot``), so a caller cannot fast-forward;
- an earlier transaction without recorded inputs and TTL (signed by a version before this rule) is never
  re-signed.

An allowed re-sign is audited (``resign_of`` names the earlier transactions) and counted against the
per-transaction and per-day caps again, like any burn.
"""

from __future__ import annotations

from collections.abc import Sequence

from signer.errors import Refusal
from signer.state import SignedTx

__all__ = ["check_resign", "input_ref"]


def input_ref(tx_id: bytes, index: int) -> str:
    """How the state database records an input: ``txid_hex#index``."""
    return f"{tx_id.hex()}#{index}"


def check_resign(earlier: Sequence[SignedTx], inputs: Sequence[tuple[bytes, int]], current_slot: int,
                 reused: Sequence[str]) -> None:
    """Refuse unless the new transaction (``inputs``, at ``current_slot``) may sign again the ids that
    ``earlier`` transactions named."""
    if not earlier:
        raise Refusal("GENERATION_ID_REUSED", f"{len(reused)} generation id(s) were signed before, "
                      f"e.g. {', '.join(reused[:3])}")
    spent = {input_ref(tx, index) for tx, index in inputs}
    for tx in earlier:
        if tx.kind != "burn" or tx.ttl < 0 or not tx.inputs:
            raise Refusal("GENERATION_ID_REUSED", f"generation id(s) such as {', '.join(reused[:3])} were signed "
                          f"in {tx.tx_id}, which has no recorded inputs and TTL: it can never be re-signed")
        if not spent.intersection(tx.inputs):
            raise Refusal("RESIGN_NO_SHARED_INPUT", f"generation id(s) such as {', '.join(reused[:3])} were signed "
                          f"in {tx.tx_id}; a new transaction for them must spend one of its inputs")
        if current_slot < tx.ttl:
            raise Refusal("RESIGN_TTL_NOT_PASSED", f"generation id(s) such as {', '.join(reused[:3])} were signed "
                          f"in {tx.tx_id}, valid until slot {tx.ttl}; the current slot is {current_slot}")

"""Kupo's secondary indexes over the chain's output history, kept in memory.

Kupo answers ``/matches/{pattern}`` from SQLite indexes on the address, the payment and delegation
credentials, the policy id and the transaction id. :class:`OutputIndex` keeps the same lookups as
insertion-ordered sets of out-refs, each in two tiers: every output, and the unspent ones (a transaction's
few outputs are one list, with no unspent tier: the status filter sorts them out). It follows the
chain through :meth:`devnet.chain.Chain.observe_outputs`: blocks add and spend, rollbacks undo, and a
chain replayed from its state dir is caught up when the index starts following it.

The index only narrows: :meth:`OutputIndex.candidates` returns a superset of the outputs a query can
select, and the matcher applies the pattern and every filter to each candidate as a full scan would.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import Any, Final

from devnet.blocks import OutputRecord
from devnet.kupo.patterns import (
    ASSET,
    BOTH,
    DELEGATION,
    EXACT,
    OUT_REF,
    PAYMENT,
    POLICY,
    TX,
    Pattern,
    delegation_part,
    payment_part,
)
from devnet.ledger.types import OutRef, TxOut

__all__ = ["OutputIndex", "index_keys"]

Key = tuple[str, Hashable]
_Refs = dict[OutRef, None]  # an insertion-ordered set
_NOTHING: Final[_Refs] = {}


def index_keys(out: TxOut) -> list[Key]:
    """The keys an output is filed under: its address, credentials, policies and assets."""
    address = out.address_bytes
    keys: list[Key] = [(EXACT, address)]
    payment = payment_part(address)
    if payment is not None:
        keys.append((PAYMENT, payment))
    delegation = delegation_part(address)
    if delegation is not None:
        keys.append((DELEGATION, delegation))
    for policy, names in out.assets.items():
        keys.append((POLICY, policy))
        keys.extend((ASSET, (policy, name)) for name in names)
    return keys


def pattern_keys(pattern: Pattern) -> list[Key]:
    """Keys whose out-refs each include every output ``pattern`` matches ([] when none does)."""
    kind = pattern.kind
    if kind in (EXACT, PAYMENT, POLICY):
        return [(kind, pattern.first)]
    if kind == DELEGATION:
        return [(DELEGATION, pattern.second)]
    if kind == BOTH:
        return [(PAYMENT, pattern.first), (DELEGATION, pattern.second)]
    if kind == ASSET:
        return [(ASSET, (pattern.first, pattern.second))]
    return []


def _add(table: dict[Key, _Refs], keys: list[Key], ref: OutRef) -> None:
    for key in keys:
        refs = table.get(key)
        if refs is None:
            table[key] = {ref: None}
        else:
            refs[ref] = None


def _discard(table: dict[Key, _Refs], keys: list[Key], ref: OutRef) -> None:
    for key in keys:
        refs = table.get(key)
        if refs is not None:
            refs.pop(ref, None)
            if not refs:
                del table[key]  # rollbacks must not leave empty entries behind


class OutputIndex:
    """Out-refs by address, payment credential, delegation credential, policy and asset, for every output
    and for the unspent ones, and by transaction id. An :class:`devnet.blocks.OutputObserver`."""

    def __init__(self) -> None:
        self._every: dict[Key, _Refs] = {}
        self._unspent: dict[Key, _Refs] = {}
        self._unspent_refs: _Refs = {}
        self._by_tx: dict[str, list[OutRef]] = {}

    @classmethod
    def follow(cls, chain: Any) -> OutputIndex:
        """An index over ``chain``'s outputs so far, kept up to date from then on."""
        index = cls()
        chain.observe_outputs(index)
        return index

    # -- following the chain ----------------------------------------------------------------------------

    def output_created(self, record: OutputRecord) -> None:
        ref = record.out_ref
        keys = index_keys(record.out)
        _add(self._every, keys, ref)
        _add(self._unspent, keys, ref)
        self._unspent_refs[ref] = None
        self._by_tx.setdefault(ref.tx_id, []).append(ref)

    def output_spent(self, record: OutputRecord) -> None:
        ref = record.out_ref
        _discard(self._unspent, index_keys(record.out), ref)
        self._unspent_refs.pop(ref, None)

    def output_unspent(self, record: OutputRecord) -> None:
        ref = record.out_ref
        _add(self._unspent, index_keys(record.out), ref)
        self._unspent_refs[ref] = None

    def output_removed(self, record: OutputRecord) -> None:
        ref = record.out_ref
        keys = index_keys(record.out)
        _discard(self._every, keys, ref)
        _discard(self._unspent, keys, ref)
        self._unspent_refs.pop(ref, None)
        refs = self._by_tx.get(ref.tx_id)
        if refs is not None and ref in refs:
            refs.remove(ref)
            if not refs:
                del self._by_tx[ref.tx_id]

    # -- answering --------------------------------------------------------------------------------------

    def candidates(
        self,
        pattern: Pattern,
        *,
        unspent: bool = False,
        transaction_id: str | None = None,
        output_index: int | None = None,
        policy_id: str | None = None,
        asset_name: str | None = None,
    ) -> Collection[OutRef] | None:
        """The smallest out-ref set the indexes give that holds every output the query can select, or
        None when only a scan of every output can tell (``*`` or ``*/*`` with no narrowing filter).

        The caller still applies the pattern and every filter to each candidate; order is not kept here.
        """
        tier = self._unspent if unspent else self._every
        options: list[Collection[OutRef]] = [tier.get(key, _NOTHING) for key in pattern_keys(pattern)]
        if pattern.kind == OUT_REF:
            options.append((OutRef(pattern.first, pattern.second),))
        elif pattern.kind == TX:
            options.append(self._by_tx.get(pattern.first, ()))
        if transaction_id is not None and output_index is not None:
            options.append((OutRef(transaction_id, output_index),))
        elif transaction_id is not None:
            options.append(self._by_tx.get(transaction_id, ()))
        if policy_id is not None:
            key: Key = (POLICY, policy_id) if asset_name is None else (ASSET, (policy_id, asset_name))
            options.append(tier.get(key, _NOTHING))
        if not options:
            return self._unspent_refs if unspent else None
        return min(options, key=len)

    def snapshot(self) -> dict[str, Any]:
        """A copy of the tables as plain sets, to compare indexes in tests."""
        def copy(table: Mapping[Any, Iterable[OutRef]]) -> dict[Any, set[OutRef]]:
            return {key: set(refs) for key, refs in table.items()}

        return {"every": copy(self._every), "unspent": copy(self._unspent), "by_tx": copy(self._by_tx),
                "unspent_refs": set(self._unspent_refs)}

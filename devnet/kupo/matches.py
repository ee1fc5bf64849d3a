"""``GET /matches``: the query-string filters Kupo accepts, applied to the chain's output records.

Candidates come from the :class:`~devnet.kupo.outputs.OutputIndex` (by address, credential, policy, asset
or transaction), or from every output when no index applies or none is given (the brute-force scan the
tests and benchmark compare against); the pattern and every filter are then checked on each candidate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from devnet.kupo.index import KupoIndex, match_json
from devnet.kupo.outputs import OutputIndex
from devnet.kupo.patterns import Pattern
from devnet.ogmios.encoding import is_hex

__all__ = ["MatchQueryError", "query_matches"]

_DOCS: Final = "<https://cardanosolutions.github.io/kupo>"
STATUS_HINT: Final = (
    "Invalid filter query! Matches can be filtered by status using HTTP query flags. Provide either "
    f"'?spent' or '?unspent' to filter accordingly. Anything else is an error. In case of doubts, check the "
    f"documentation at: {_DOCS}!"
)
FILTER_HINT: Final = (
    "Invalid or incomplete filter query parameters! 'policy_id' and 'asset_name' query values must be "
    "encoded in base16. Be aware that you MUST specify a 'policy_id' if you specify an 'asset_name', and a "
    f"'transaction_id' if you specify an 'output_index'. In case of doubts, check the documentation at: {_DOCS}!"
)
ORDER_HINT: Final = "Invalid sort direction! 'order' must be 'most_recent_first' or 'oldest_first'."
RANGE_HINT: Final = (
    "Invalid range query! Use at most one lower bound ('created_after' or 'spent_after') and at most one upper "
    "bound ('created_before' or 'spent_before'); each is a slot number or a point '<slot>.<header hash>'."
)
UNKNOWN_POINT_HINT: Final = "The provided point (or slot) is unknown. Please provide an existing point from the past."


class MatchQueryError(ValueError):
    """A bad query string; the message is the hint to send back (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class _Bound:
    field: str  # "created" | "spent"
    slot: int


def _flag(query: Mapping[str, str], name: str) -> bool:
    if name not in query:
        return False
    if query.get(name, "") not in ("", "true"):
        raise MatchQueryError(STATUS_HINT if name in ("spent", "unspent") else FILTER_HINT)
    return True


def _bound(chain: Any, query: Mapping[str, str], names: tuple[str, str]) -> _Bound | None:
    given = [name for name in names if name in query]
    if len(given) > 1:
        raise MatchQueryError(RANGE_HINT)
    if not given:
        return None
    text = query[given[0]]
    slot_text, dot, header = text.partition(".")
    if not slot_text.isdigit() or len(slot_text) > 20 or (dot and not is_hex(header, 64)):
        raise MatchQueryError(RANGE_HINT)
    slot = int(slot_text)
    if dot:
        block = chain.block_by_id(header)
        if block is None or block.slot != slot:
            raise MatchQueryError(UNKNOWN_POINT_HINT)
    return _Bound(given[0].split("_")[0], slot)


def _value_filters(query: Mapping[str, str]) -> tuple[str | None, str | None, str | None, int | None]:
    policy, name = query.get("policy_id"), query.get("asset_name")
    tx_id, index_text = query.get("transaction_id"), query.get("output_index")
    if (name is not None and policy is None) or (index_text is not None and tx_id is None):
        raise MatchQueryError(FILTER_HINT)
    if policy is not None and not is_hex(policy, 56):
        raise MatchQueryError(FILTER_HINT)
    if name is not None and not (is_hex(name) and len(name) <= 64):
        raise MatchQueryError(FILTER_HINT)
    if tx_id is not None and not is_hex(tx_id, 64):
        raise MatchQueryError(FILTER_HINT)
    if index_text is not None and not (index_text.isdigit() and len(index_text) <= 10):
        raise MatchQueryError(FILTER_HINT)
    return policy, name, tx_id, None if index_text is None else int(index_text)


def _in_range(record: Any, lower: _Bound | None, upper: _Bound | None) -> bool:
    for bound, is_lower in ((lower, True), (upper, False)):
        if bound is None:
            continue
        if bound.field == "created":
            slot = record.created.slot
        elif record.spent is None:
            return False
        else:
            slot = record.spent.slot
        if (slot < bound.slot) if is_lower else (slot > bound.slot):
            return False
    return True


def _records(
    chain: Any, outputs: OutputIndex | None, pattern: Pattern, unspent: bool,
    value_filters: tuple[str | None, str | None, str | None, int | None],
) -> Iterable[Any]:
    """The output records to check: the index's candidates, else every output."""
    policy, name, tx_id, output_index = value_filters
    refs = None if outputs is None else outputs.candidates(
        pattern, unspent=unspent, transaction_id=tx_id, output_index=output_index, policy_id=policy, asset_name=name
    )
    records: dict[Any, Any] = chain.outputs
    if refs is None:
        return records.values()
    return [record for ref in refs if (record := records.get(ref)) is not None]


def query_matches(
    chain: Any,
    index: KupoIndex,
    configured: list[Pattern],
    pattern: Pattern,
    query: Mapping[str, str],
    quantities_as_string: bool = False,
    outputs: OutputIndex | None = None,
) -> list[dict[str, Any]]:
    """The matches of ``pattern`` under ``query``, as Kupo orders them.

    With ``outputs`` the candidates come from its indexes; without, every output is scanned. Both give
    the same answer.
    """
    spent, unspent = _flag(query, "spent"), _flag(query, "unspent")
    if spent and unspent:
        raise MatchQueryError(STATUS_HINT)
    order = query.get("order", "most_recent_first")
    if order not in ("most_recent_first", "oldest_first"):
        raise MatchQueryError(ORDER_HINT)
    lower = _bound(chain, query, ("created_after", "spent_after"))
    upper = _bound(chain, query, ("created_before", "spent_before"))
    value_filters = _value_filters(query)
    policy, name, tx_id, output_index = value_filters
    resolve = "resolve_hashes" in query
    selected = []
    for record in _records(chain, outputs, pattern, unspent, value_filters):
        ref, out = record.out_ref, record.out
        if (spent and record.spent is None) or (unspent and record.spent is not None):
            continue
        if tx_id is not None and (ref.tx_id != tx_id or (output_index is not None and ref.index != output_index)):
            continue
        if policy is not None:
            names = out.assets.get(policy)
            if not names or (name is not None and not names.get(name)):
                continue
        if not _in_range(record, lower, upper) or not pattern.matches(ref.tx_id, ref.index, out):
            continue
        if not any(p.matches(ref.tx_id, ref.index, out) for p in configured):
            continue
        selected.append(record)
    selected.sort(
        key=lambda r: (r.created.slot, r.created.tx_index, r.out_ref.index), reverse=order == "most_recent_first"
    )
    if resolve:
        index.refresh()
    return [match_json(r, index, resolve=resolve, quantities_as_string=quantities_as_string) for r in selected]

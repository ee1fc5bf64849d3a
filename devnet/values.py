"""Multi-asset value helpers shared by the ledger, Ogmios and Kupo code.

A value inside the devnet is ``(lovelace, assets)`` where ``assets`` maps a policy id (56 hex) to
``{asset_name_hex: quantity}``.  Quantities are plain ints (may be negative in a mint).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devnet.ledger.types import TxOut

__all__ = [
    "Assets",
    "add_assets",
    "assets_from_flat",
    "assets_is_empty",
    "assets_le",
    "copy_assets",
    "lovelace_to_ogmios",
    "normalize_assets",
    "out_ref_to_ogmios",
    "output_to_ogmios",
    "sub_assets",
    "value_to_kupo",
    "value_to_ogmios",
]

Assets = dict[str, dict[str, int]]


def copy_assets(assets: Mapping[str, Mapping[str, int]]) -> Assets:
    return {policy: dict(names) for policy, names in assets.items()}


def normalize_assets(assets: Mapping[str, Mapping[str, int]]) -> Assets:
    """Drop zero quantities and empty policies; sort keys for a canonical form."""
    out: Assets = {}
    for policy in sorted(assets):
        names = {name: qty for name, qty in sorted(assets[policy].items()) if qty != 0}
        if names:
            out[policy] = names
    return out


def add_assets(*values: Mapping[str, Mapping[str, int]]) -> Assets:
    """Sum several asset maps (normalized result)."""
    total: Assets = {}
    for assets in values:
        for policy, names in assets.items():
            bucket = total.setdefault(policy, {})
            for name, qty in names.items():
                bucket[name] = bucket.get(name, 0) + qty
    return normalize_assets(total)


def sub_assets(left: Mapping[str, Mapping[str, int]], right: Mapping[str, Mapping[str, int]]) -> Assets:
    negated = {policy: {name: -qty for name, qty in names.items()} for policy, names in right.items()}
    return add_assets(left, negated)


def assets_is_empty(assets: Mapping[str, Mapping[str, int]]) -> bool:
    return not normalize_assets(assets)


def assets_le(left: Mapping[str, Mapping[str, int]], right: Mapping[str, Mapping[str, int]]) -> bool:
    """True when every quantity in ``left`` is covered by ``right``."""
    return all(qty >= 0 for names in sub_assets(right, left).values() for qty in names.values())


def assets_from_flat(flat: Mapping[str, int]) -> Assets:
    """``{"<policy>.<namehex>": qty}`` (or ``"<policy>"`` for the empty name) -> nested assets."""
    nested: Assets = {}
    for key, qty in flat.items():
        policy, _, name = key.partition(".")
        nested.setdefault(policy, {})
        nested[policy][name] = nested[policy].get(name, 0) + qty
    return normalize_assets(nested)


def lovelace_to_ogmios(lovelace: int) -> dict[str, dict[str, int]]:
    return {"ada": {"lovelace": lovelace}}


def value_to_ogmios(lovelace: int, assets: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Ogmios v6 ``Value``: ``{"ada": {"lovelace": n}, "<policy>": {"<name hex>": qty}}``."""
    value: dict[str, dict[str, int]] = {"ada": {"lovelace": lovelace}}
    for policy, names in assets.items():
        value[policy] = dict(names)
    return value


def value_to_kupo(lovelace: int, assets: Mapping[str, Mapping[str, int]]) -> dict[str, object]:
    """Kupo v2 value: ``{"coins": n, "assets": {"<policy>.<name>": qty, "<policy>": qty}}``."""
    flat: dict[str, int] = {}
    for policy, names in assets.items():
        for name, qty in names.items():
            flat[f"{policy}.{name}" if name else policy] = qty
    return {"coins": lovelace, "assets": flat}


def out_ref_to_ogmios(tx_id: str, index: int) -> dict[str, object]:
    return {"transaction": {"id": tx_id}, "index": index}



def output_to_ogmios(out: TxOut) -> dict[str, Any]:
    """Ogmios ``TransactionOutput`` JSON: address, value, datumHash | datum, script."""
    from devnet.ledger.native import NativeScriptError, parse_script_ref

    result: dict[str, Any] = {"address": out.address, "value": value_to_ogmios(out.lovelace, out.assets)}
    if out.inline_datum is not None:
        result["datum"] = out.inline_datum.hex()
    elif out.datum_hash is not None:
        result["datumHash"] = out.datum_hash
    if out.script_ref is not None:
        with contextlib.suppress(NativeScriptError, ValueError):
            result["script"] = parse_script_ref(out.script_ref).to_ogmios()
    return result

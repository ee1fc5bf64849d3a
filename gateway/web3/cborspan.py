"""The gateway's CBOR spans: the exact bytes of a transaction's top-level items (:mod:`common.cborscan`).

A transaction id is blake2b-256 over the body **as sent**, so the splicer copies the body and auxiliary
data verbatim from these spans. Wallet input is bounded tighter here than the devnet's scanner default.
"""

from __future__ import annotations

from common.cborscan import CborScanError, split_array

__all__ = ["MAX_DEPTH", "CborSpanError", "array_items"]

MAX_DEPTH = 64

CborSpanError = CborScanError  # the name the web3 domain catches


def array_items(data: bytes) -> list[bytes]:
    """The exact bytes of each element of the definite or indefinite array that is all of ``data``."""
    return split_array(data, max_depth=MAX_DEPTH)

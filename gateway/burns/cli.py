"""``python -m gateway verify-receipt FILE`` and reconcile's on-chain burn check.

``verify-receipt`` needs no gateway database: only the receipt (JSON, as ``GET /v1/generations/{id}/receipt``
returns it) and the indexer (``--indexer`` or ``GATEWAY_INDEXER_TARGET``). Exit 0 verified, 1 a check
failed (each is printed), 2 the file or the indexer could not be read.

The reconcile check ``burns_on_chain``: every confirmed or final batch is on chain with its commitment
and burned exactly its count; the tokens burned on chain equal those in confirmed batches; no batch
superseded by a rebuild ever landed; final batches equal the settled burn intents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from common.commitment import COMMITMENT_LABEL, CommitmentError, parse_commitment
from gateway.burns import store
from gateway.burns.verify import burned_by, render, verify_receipt
from gateway.cli import COMMANDS
from gateway.credits.ledger import Ledger
from gateway.credits.reconcile import CheckResult, register_check
from gateway.lib.db import open_database
from gateway.lib.dialect import table_names
from gateway.settings import GatewaySettings
from gateway.web3.chain import Chain, GrpcChain, TxNotFound, TxState

__all__ = ["check_burns_on_chain"]

MAX_RECEIPT_BYTES = 256 * 1024


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the receipt JSON ('-' reads stdin)")
    parser.add_argument("--indexer", default="", help="indexer gRPC target (default GATEWAY_INDEXER_TARGET)")
    parser.add_argument("--json", action="store_true", help="print the verdict as one JSON object")


def _read_receipt(path: Path) -> dict[str, Any]:
    raw = sys.stdin.buffer.read(MAX_RECEIPT_BYTES + 1) if str(path) == "-" else path.read_bytes()
    if len(raw) > MAX_RECEIPT_BYTES:
        raise ValueError("the receipt is larger than 256 KiB")
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a receipt is a JSON object")
    return value


async def _verify(receipt: dict[str, Any], target: str) -> Any:
    chain = GrpcChain(target)
    try:
        return await verify_receipt(receipt, chain)
    finally:
        await chain.close()


def _run(settings: GatewaySettings, args: argparse.Namespace) -> int:
    try:
        receipt = _read_receipt(args.file)
    except (OSError, ValueError) as exc:
        print(f"verify-receipt: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    verdict = asyncio.run(_verify(receipt, args.indexer or settings.indexer_target))
    if args.json:
        print(json.dumps({"ok": verdict.ok, "depth": verdict.depth, "block_height": verdict.block_height,
                          "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in verdict.checks]}))
    else:
        print(render(verdict, receipt))
    return 0 if verdict.ok else 1


COMMANDS["verify-receipt"] = ("check a burn receipt against the chain through the indexer (no database)",
                              _add_arguments, _run)


async def check_burns_on_chain(settings: GatewaySettings, ledger: Ledger) -> CheckResult:
    """Every confirmed or final batch burned on chain exactly what it counts, under its Merkle root, and no
    superseded tx landed (on the gateway's database, SQLite or PostgreSQL: not through ``ledger``)."""
    db = open_database(settings.database_url, settings.sqlite_path)

    def read(conn: sqlite3.Connection) -> tuple[list[store.Batch], int]:
        if "burn_batches" not in table_names(conn):
            return [], 0
        batches = store.select_batches(conn, "state IN ('confirmed', 'final', 'expired')" + store.ORDER)
        settled = int(conn.execute("SELECT COUNT(*) FROM burn_settlements").fetchone()[0])
        return batches, settled

    try:
        batches, settled = await db.read(read)
    finally:
        db.close()
    if not batches:
        return CheckResult([], {"batches_checked": 0})
    chain = GrpcChain(settings.indexer_target)
    try:
        return await _against_chain(chain, batches, settled)
    finally:
        await chain.close()


async def _against_chain(chain: Chain, batches: list[store.Batch], settled: int) -> CheckResult:
    breaches: list[str] = []
    on_chain = in_batches = final = 0
    for batch in batches:
        status = await chain.tx_status(batch.tx_id)
        landed = status.state == TxState.CONFIRMED
        if batch.state == "expired":
            if landed:
                breaches.append(f"batch {batch.id}: superseded tx {batch.tx_id} is on chain (burned twice?)")
            continue
        in_batches += batch.count
        final += batch.count if batch.state == "final" else 0
        if not landed:
            breaches.append(f"batch {batch.id} ({batch.state}): tx {batch.tx_id} is {status.state} on chain")
            continue
        try:
            tx = await chain.transaction(batch.tx_id)
        except TxNotFound:
            breaches.append(f"batch {batch.id}: the indexer has no record of tx {batch.tx_id}")
            continue
        burned, how = burned_by(tx)
        on_chain += burned
        if burned != batch.count:
            breaches.append(f"batch {batch.id}: tx {batch.tx_id} burned {burned} ({how}),"
                            f" the batch counts {batch.count}")
        try:
            commitment = parse_commitment(tx.label_json(COMMITMENT_LABEL))
            if (commitment.count, commitment.root.hex()) != (batch.count, batch.root):
                breaches.append(f"batch {batch.id}: on-chain commitment differs from the batch's ids")
        except CommitmentError as exc:
            breaches.append(f"batch {batch.id}: metadata 1967: {exc}")
    if on_chain != in_batches:
        breaches.append(f"tokens burned on chain {on_chain} != tokens in confirmed batches {in_batches}")
    if final != settled:
        breaches.append(f"final batches hold {final} ids but {settled} burn intents are settled")
    return CheckResult(breaches, {"batches_checked": len(batches), "tokens_burned_on_chain": on_chain,
                                  "tokens_in_confirmed_batches": in_batches, "tokens_final": final})


register_check("burns_on_chain", check_burns_on_chain)

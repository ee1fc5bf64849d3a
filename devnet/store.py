"""Persistence for ``--state-dir``: ``genesis.json`` plus an append-only block log.

Each record is ``length (4 bytes BE) | crc32 (4 bytes BE) | CBOR [height, slot, [tx cbor…], [faucet tx
indexes]]``.  Writes are flushed with one fsync per produce/rollback call; a torn or corrupt last record
(kill -9 mid-write) is cut off at load.  A rollback truncates the log.  ``devnet.lock`` (flock) keeps two
devnets off one directory.  The mempool is not persisted, like a node's.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import cbor2

from devnet.ledger.decode import decode_tx
from devnet.ledger.types import LedgerError, LedgerRejection, Tx

__all__ = ["ChainStore", "StoreError"]

_HEADER = struct.Struct(">II")
MAX_RECORD_BYTES = 64 << 20


class StoreError(LedgerError):
    """The state directory is unusable (locked by another devnet, unreadable, inconsistent)."""


class ChainStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.directory / "devnet.lock", "a+b")  # noqa: SIM115 - held for the process life
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock.close()
            raise StoreError(f"state directory {self.directory} is in use by another devnet") from exc
        self.log_path = self.directory / "blocks.log"
        self._log = open(self.log_path, "a+b")  # noqa: SIM115
        self._offsets: list[int] = []  # file offset of each block record (index = height - 1)

    @property
    def genesis_path(self) -> Path:
        return self.directory / "genesis.json"

    def load_genesis(self) -> dict[str, Any] | None:
        if not self.genesis_path.exists():
            return None
        try:
            state = json.loads(self.genesis_path.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {self.genesis_path}: {exc}") from exc
        if not isinstance(state, dict):
            raise StoreError(f"{self.genesis_path} is not a JSON object")
        return state

    def save_genesis(self, state: dict[str, Any]) -> None:
        tmp = self.genesis_path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.genesis_path)
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def load_blocks(self) -> list[tuple[int, int, list[Tx]]]:
        """Every intact record, in order; a torn or corrupt tail is truncated away."""
        self._log.seek(0)
        data = self._log.read()
        blocks: list[tuple[int, int, list[Tx]]] = []
        self._offsets = []
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, pos)
            start = pos + _HEADER.size
            payload = data[start : start + length]
            if length > MAX_RECORD_BYTES or len(payload) < length or zlib.crc32(payload) != crc:
                break
            try:
                blocks.append(self._decode_record(payload))
            except (LedgerRejection, ValueError, cbor2.CBORDecodeError) as exc:
                raise StoreError(f"corrupt block record at offset {pos} of {self.log_path}: {exc}") from exc
            self._offsets.append(pos)
            pos = start + length
        if pos != len(data):
            self._log.truncate(pos)
            self._log.flush()
            os.fsync(self._log.fileno())
        self._log.seek(0, os.SEEK_END)
        return blocks

    @staticmethod
    def _decode_record(payload: bytes) -> tuple[int, int, list[Tx]]:
        height, slot, tx_cbors, faucet_indexes = cbor2.loads(payload)
        txs = [decode_tx(raw) for raw in tx_cbors]
        for index in faucet_indexes:
            txs[index].faucet = True
        return int(height), int(slot), txs

    def append_block(self, height: int, slot: int, txs: list[Tx]) -> None:
        if height != len(self._offsets) + 1:
            raise StoreError(f"block {height} appended after {len(self._offsets)} stored blocks")
        payload = cbor2.dumps([height, slot, [tx.cbor for tx in txs],
                               [i for i, tx in enumerate(txs) if tx.faucet]])
        self._log.seek(0, os.SEEK_END)
        self._offsets.append(self._log.tell())
        self._log.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)

    def truncate(self, height: int) -> None:
        """Keep blocks 1..height."""
        if height < len(self._offsets):
            self._log.flush()
            self._log.truncate(self._offsets[height])
            del self._offsets[height:]
            self._log.seek(0, os.SEEK_END)
        self.sync()

    def sync(self) -> None:
        self._log.flush()
        os.fsync(self._log.fileno())

    def close(self) -> None:
        try:
            self.sync()
        finally:
            self._log.close()
            self._lock.close()

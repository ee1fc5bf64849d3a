"""The SQLite store: batches, rollbacks, tx locations, intersection points, persistence."""

from __future__ import annotations

from pathlib import Path

from indexer.chain import ORIGIN, BlockRecord, Point
from indexer.store import Rollback, Store


def _block(height: int, tx_ids: list[str] = (), fork: str = "a") -> BlockRecord:  # type: ignore[assignment]
    return BlockRecord(height, height * 2 + 1, fork * 2 + f"{height:062x}", list(tx_ids))


def test_blocks_rollback_and_reinclusion(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    tx = "11" * 32
    store.apply([_block(0), _block(1, [tx]), _block(2), _block(3)])
    loc = store.locate([tx, "22" * 32])
    assert list(loc) == [tx] and loc[tx].height == 1 and not loc[tx].rolled_back
    assert store.tip().height == 3  # type: ignore[union-attr]

    store.apply([Rollback(Point(_block(0).slot, _block(0).id))])
    assert store.tip().height == 0  # type: ignore[union-attr]
    loc = store.locate([tx])
    assert loc[tx].rolled_back and loc[tx].block_id == _block(1).id and store.rolled_back_count == 1

    store.apply([_block(1, fork="b"), _block(2, [tx], fork="b")])
    loc = store.locate([tx])
    assert not loc[tx].rolled_back and loc[tx].height == 2 and loc[tx].block_id == _block(2, fork="b").id
    assert store.rolled_back_count == 0
    store.apply([Rollback(ORIGIN)])
    assert store.tip() is None and store.locate([tx])[tx].rolled_back
    store.close()


def test_watched_outputs_follow_rollbacks(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    ref = ("11" * 32, 0)
    created = _block(1)
    created.created.append(ref)
    spent = _block(2)
    spent.spent.append(ref)
    store.apply([_block(0), created, spent])
    assert store.load_unspent_watched() == set()
    store.apply([Rollback(Point(created.slot, created.id))])
    assert store.load_unspent_watched() == {ref}
    store.apply([Rollback(ORIGIN)])
    assert store.load_unspent_watched() == set()
    store.close()


def test_intersection_points_are_dense_then_sparse_and_persist(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    store.apply([_block(h) for h in range(3000)])
    points = store.intersection_points(keep_points=2160)
    heights = [(p.slot - 1) // 2 for p in points]
    assert heights[:16] == list(range(2999, 2983, -1))
    assert heights == sorted(heights, reverse=True) and 2999 - heights[-1] <= 2160 and len(points) < 40
    store.record_submitted("33" * 32)
    store.close()
    again = Store.open(tmp_path / "s.db")
    assert again.tip().height == 2999 and again.is_submitted("33" * 32)  # type: ignore[union-attr]
    assert again.load_submitted() == {"33" * 32}
    again.close()

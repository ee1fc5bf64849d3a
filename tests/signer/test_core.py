from __future__ import annotations

from pathlib import Path

import cbor2
import pytest

from signer.core import BurnRequest, Signed, SignerCore, witness_set_cbor
from signer.errors import AuditError
from tests.signer.helpers import CURRENT_SLOT, BurnTx, make_core, provision


@pytest.mark.parametrize("count", [0, 1, 2, 23])
def test_witness_set_is_the_cbor2_encoding(count: int) -> None:
    pairs = [(bytes([i]) * 32, bytes([i + 1]) * 64) for i in range(count)]
    assert witness_set_cbor(pairs) == cbor2.dumps({0: [list(p) for p in pairs]})


def test_witness_set_refuses_odd_sizes() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        witness_set_cbor([(b"k" * 31, b"s" * 64)])


def _burn(core: SignerCore, tag: str) -> BurnRequest:
    ids = [f"{tag}-{i}" for i in range(3)]
    return BurnRequest(BurnTx(core.policy, ids).encode(), 1, tuple(ids), tag, CURRENT_SLOT, "test")


@pytest.mark.parametrize("overlap", [True, False])
def test_commit_makes_state_and_log_durable(workdir: Path, overlap: bool) -> None:
    core = make_core(provision("file", workdir), SIGNER_FSYNC="true")
    try:
        [signed] = core.decide([_burn(core, "a")]).commit(overlap=overlap)
        assert isinstance(signed, Signed) and core.state.used_generation_ids(["a-0"]) == ["a-0"]
        assert core.state.audit_head() == (1, signed.audit_id)
    finally:
        core.state.close()
        core.audit.close()


def test_a_log_that_cannot_sync_leaves_no_state(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    core = make_core(provision("file", workdir), SIGNER_FSYNC="true")
    try:
        def refuse() -> None:
            raise AuditError("cannot fsync the audit log: I/O error")

        monkeypatch.setattr(core.audit, "sync", refuse)
        with pytest.raises(AuditError):
            core.decide([_burn(core, "a")]).commit(overlap=False)
        assert core.state.used_generation_ids(["a-0"]) == [] and core.state.audit_head() is None
        monkeypatch.undo()
        [signed] = core.decide([_burn(core, "b")]).commit(overlap=False)  # the state lock was released
        assert isinstance(signed, Signed)
    finally:
        core.state.close()
        core.audit.close()

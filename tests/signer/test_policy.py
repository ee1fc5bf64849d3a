"""Every forbidden transaction shape is refused with its reason; allowed burns get valid witnesses.

Runs against the real core (policy + SQLite state + audit log + key store), with each key store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
import pytest

from signer.chain import blake2b_256, key_hash
from signer.core import BurnRequest, Denied, MintRequest, Signed, SignerCore
from tests.signer.helpers import CURRENT_SLOT, ZERO_TX, BurnTx, gen_ids, make_core, tx_id_of, verify_witnesses

FOREIGN_ADDR = bytes([0x60]) + b"\x11" * 28
FOREIGN_POLICY = b"\x22" * 28
CAPS = {"SIGNER_MAX_FEE_LOVELACE": "500000", "SIGNER_MAX_SINK_LOVELACE": "2000000",
        "SIGNER_MAX_TOKENS_PER_TX": "8", "SIGNER_MAX_TOKENS_PER_DAY": "12", "SIGNER_MAX_TTL_SLOTS": "1000",
        "SIGNER_MAX_GENERATION_IDS": "10"}


def burn(core: SignerCore, tx: bytes, ids: list[str], slot: int = CURRENT_SLOT, purpose: int = 1) -> Any:
    [outcome] = core.process([BurnRequest(tx, purpose, tuple(ids), "req-1", slot, "test")])
    return outcome


def with_body(change: Callable[[dict[int, Any], BurnTx], None]) -> Callable[[BurnTx], bytes]:
    def build(spec: BurnTx) -> bytes:
        body = spec.body()
        change(body, spec)
        return spec.encode(body)
    return build


def _set(key: int, value: Any) -> Callable[[BurnTx], bytes]:
    return with_body(lambda body, spec: body.__setitem__(key, value))


def _outputs_add(out: Any) -> Callable[[BurnTx], bytes]:
    return with_body(lambda body, spec: body[1].append(out(spec)))


def _mint(value: Callable[[BurnTx], Any]) -> Callable[[BurnTx], bytes]:
    return with_body(lambda body, spec: body.__setitem__(9, value(spec)))


def _aux(aux: Callable[[BurnTx], Any]) -> Callable[[BurnTx], bytes]:
    return lambda spec: spec.encode(aux=aux(spec))


def _duplicate_fee_key(spec: BurnTx) -> bytes:
    # The body map declares one more entry than it has distinct keys: fee (2) appears twice.
    raw = spec.encode()
    tx = cbor2.loads(raw)
    body = cbor2.dumps(tx[0])
    assert body[0] >> 5 == 5 and body[0] & 0x1F < 23
    forged = bytes([body[0] + 1]) + body[1:] + b"\x02\x00"
    return b"\x84" + forged + cbor2.dumps({}) + cbor2.dumps(True) + cbor2.dumps(tx[3])


SHAPES: list[tuple[str, str, Callable[[BurnTx], bytes], str]] = [
    ("output-foreign", "mint", _outputs_add(lambda s: [FOREIGN_ADDR, 1_000_000]), "OUTPUT_NOT_ALLOWED"),
    ("output-datum", "mint", _outputs_add(lambda s: [s.cfg.custodial_address, 1_000_000, b"\x01" * 32]),
     "OUTPUT_NOT_ALLOWED"),
    ("output-script-ref", "mint", _outputs_add(lambda s: {0: s.cfg.custodial_address, 1: 1_000_000,
                                                         3: cbor2.CBORTag(24, b"\x82\x02\x80")}), "OUTPUT_NOT_ALLOWED"),
    ("sink-foreign-asset", "address",
     with_body(lambda b, s: b[1].__setitem__(0, [s.cfg.sink_address, [1_000_000, {
         FOREIGN_POLICY: {b"x": 1}, s.cfg.policy_id: {s.cfg.asset_name: 3}}]])), "OUTPUT_NOT_ALLOWED"),
    ("sink-second-output", "address",
     _outputs_add(lambda s: [s.cfg.sink_address, [1_000_000, {FOREIGN_POLICY: {b"x": 1}}]]), "SINK_OUTPUT_NOT_ALLOWED"),
    ("sink-output-missing", "address", with_body(lambda b, s: b[1].pop(0)), "SINK_OUTPUT_NOT_ALLOWED"),
    ("mint-positive", "mint", _mint(lambda s: {s.cfg.policy_id: {s.cfg.asset_name: 3}}), "MINT_POSITIVE"),
    ("mint-foreign-policy", "mint", _mint(lambda s: {s.cfg.policy_id: {s.cfg.asset_name: -3},
                                                      FOREIGN_POLICY: {b"x": -1}}), "MINT_FOREIGN_POLICY"),
    ("mint-other-asset", "mint", _mint(lambda s: {s.cfg.policy_id: {b"OTHER": -3}}), "MINT_NOT_ALLOWED"),
    ("mint-in-address-mode", "address", _mint(lambda s: {s.cfg.policy_id: {s.cfg.asset_name: -3}}),
     "MINT_NOT_ALLOWED"),
    ("certificates", "mint", _set(4, [[0, [0, b"\x33" * 28]]]), "CERTIFICATES_NOT_ALLOWED"),
    ("withdrawals", "mint", _set(5, {b"\xe0" + b"\x44" * 28: 1_000_000}), "WITHDRAWALS_NOT_ALLOWED"),
    ("votes", "mint", _set(19, {}), "VOTES_NOT_ALLOWED"),
    ("proposals", "mint", _set(20, []), "PROPOSALS_NOT_ALLOWED"),
    ("collateral-return", "mint", _set(16, [FOREIGN_ADDR, 5_000_000]), "COLLATERAL_RETURN_NOT_ALLOWED"),
    ("collateral-inputs", "mint", _set(13, [[ZERO_TX, 1]]), "UNKNOWN_FIELD"),
    ("total-collateral", "mint", _set(17, 1), "UNKNOWN_FIELD"),
    ("reference-inputs", "mint", _set(18, [[ZERO_TX, 2]]), "UNKNOWN_FIELD"),
    ("script-data-hash", "mint", _set(11, b"\x00" * 32), "UNKNOWN_FIELD"),
    ("treasury-donation", "mint", _set(22, 1), "UNKNOWN_FIELD"),
    ("unknown-key", "mint", _set(99, 0), "UNKNOWN_FIELD"),
    ("foreign-required-signer", "mint", _set(14, [b"\x55" * 28]), "UNKNOWN_FIELD"),
    ("network-id", "mint", _set(15, 1), "NETWORK_ID_MISMATCH"),
    ("fee-over-cap", "mint", _set(2, 500_001), "FEE_OVER_CAP"),
    ("sink-ada-over-cap", "address", lambda s: BurnTx(s.cfg, s.ids, sink_lovelace=2_000_001).encode(),
     "SINK_ADA_OVER_CAP"),
    ("sink-output-in-mint-mode", "mint", _outputs_add(lambda s: [s.cfg.sink_address, 1_000_000]),
     "SINK_OUTPUT_NOT_ALLOWED"),
    ("ttl-missing", "mint", lambda s: BurnTx(s.cfg, s.ids, ttl=None).encode(), "TTL_MISSING"),
    ("ttl-too-far", "mint", lambda s: BurnTx(s.cfg, s.ids, ttl=CURRENT_SLOT + 1001).encode(), "TTL_TOO_FAR"),
    ("ttl-expired", "mint", lambda s: BurnTx(s.cfg, s.ids, ttl=CURRENT_SLOT).encode(), "TTL_EXPIRED"),
    ("burn-count-mismatch", "mint", _mint(lambda s: {s.cfg.policy_id: {s.cfg.asset_name: -2}}),
     "BURN_COUNT_MISMATCH"),
    ("burn-count-mismatch-address", "address",
     with_body(lambda b, s: b[1].__setitem__(
         0, [s.cfg.sink_address, [1_000_000, {s.cfg.policy_id: {s.cfg.asset_name: 2}}]])),
     "BURN_COUNT_MISMATCH"),
    ("metadata-root", "mint", _aux(lambda s: {1967: {"v": 1, "n": 3, "root": "00" * 32}}), "METADATA_MISMATCH"),
    ("metadata-count", "mint",
     _aux(lambda s: {1967: {"v": 1, "n": 4, "root": s.metadata()[1967]["root"]}}), "METADATA_MISMATCH"),
    ("metadata-extra-label", "mint", _aux(lambda s: {**s.metadata(), 42: "hello"}), "METADATA_MISMATCH"),
    ("metadata-absent", "mint", _aux(lambda s: None), "METADATA_MISMATCH"),
    ("aux-hash-mismatch", "mint", lambda s: s.encode(aux_hash=b"\x00" * 32), "METADATA_MISMATCH"),
    ("aux-with-scripts", "mint", _aux(lambda s: cbor2.CBORTag(259, {0: s.metadata(), 1: [[2, []]]})),
     "METADATA_MISMATCH"),
    ("bare-body", "mint", lambda s: cbor2.dumps(s.body() | {7: blake2b_256(cbor2.dumps(s.metadata()))}),
     "METADATA_MISMATCH"),
    ("duplicate-body-key", "mint", _duplicate_fee_key, "MALFORMED_TRANSACTION"),
    ("not-cbor", "mint", lambda s: b"\xff\x00garbage", "MALFORMED_TRANSACTION"),
    ("float-fee", "mint", _set(2, 1.5), "MALFORMED_TRANSACTION"),
    ("trailing-bytes", "mint", lambda s: s.encode() + b"\x00", "MALFORMED_TRANSACTION"),
    ("invalid-flag", "mint", lambda s: cbor2.dumps([s.body(), {}, False, None]), "MALFORMED_TRANSACTION"),
]


@pytest.mark.parametrize(("mode", "build", "reason"), [pytest.param(m, b, r, id=i) for i, m, b, r in SHAPES])
def test_forbidden_shape_is_refused(provisioner: Callable[..., Any], mode: str, build: Callable[[BurnTx], bytes],
                                    reason: str) -> None:
    core = make_core(provisioner(mode), **CAPS)
    ids = gen_ids("g", 3)
    outcome = burn(core, build(BurnTx(core.policy, ids)), ids)
    assert isinstance(outcome, Denied), outcome
    assert (outcome.reason, outcome.invalid) == (reason, False), outcome.detail
    assert len(outcome.audit_id) == 64
    # Nothing was consumed: the honest transaction for the same ids still signs.
    assert isinstance(burn(core, BurnTx(core.policy, ids).encode(), ids), Signed)


@pytest.mark.parametrize("mode", ["mint", "address"])
def test_allowed_burn_gets_witnesses_that_verify(provisioner: Callable[..., Any], mode: str) -> None:
    core = make_core(provisioner(mode), **CAPS)
    ids = gen_ids("ok", 5)
    tx = BurnTx(core.policy, ids).encode()
    outcome = burn(core, tx, ids)
    assert isinstance(outcome, Signed), outcome
    assert outcome.tx_id == tx_id_of(tx).hex() and outcome.tokens == 5
    signers = {key_hash(v) for v in verify_witnesses(outcome.witness_set_cbor, tx_id_of(tx))}
    expected = {core.policy.payment_key_hash} | ({core.policy.policy_key_hash} if mode == "mint" else set())
    assert signers == expected


def test_generation_id_is_never_signed_twice(provisioner: Callable[..., Any]) -> None:
    """While the first transaction may still land, its ids are not signed again (the re-sign rule, in
    test_hardening.py, says when they may be)."""
    core = make_core(provisioner(), **CAPS)
    first = gen_ids("a", 3)
    assert isinstance(burn(core, BurnTx(core.policy, first).encode(), first), Signed)
    again = [first[1], "fresh-1"]
    outcome = burn(core, BurnTx(core.policy, again, fee=170_000).encode(), again)
    assert isinstance(outcome, Denied) and outcome.reason == "RESIGN_TTL_NOT_PASSED"
    assert first[1] in outcome.detail


def test_identical_retry_is_idempotent_and_counted_once(provisioner: Callable[..., Any]) -> None:
    core = make_core(provisioner(), **CAPS)
    ids = gen_ids("r", 4)
    tx = BurnTx(core.policy, ids).encode()
    first, second = burn(core, tx, ids), burn(core, tx, ids)
    assert isinstance(first, Signed) and isinstance(second, Signed)
    assert (second.replay, second.witness_set_cbor, second.tx_id) == (True, first.witness_set_cbor, first.tx_id)
    assert core.tokens_signed_today() == 4


def test_tokens_per_day_cap_and_utc_rollover(provisioner: Callable[..., Any]) -> None:
    now = [1_700_000_000.0]  # 2023-11-14T22:13:20Z
    prov = provisioner()
    core = make_core(prov, clock=lambda: now[0], SIGNER_SYSTEM_START=str(int(now[0]) - CURRENT_SLOT),
                     SIGNER_SLOT_TOLERANCE="10000", **CAPS)
    a, b, c = gen_ids("d1", 8), gen_ids("d2", 5), gen_ids("d3", 5)
    assert isinstance(burn(core, BurnTx(core.policy, a).encode(), a), Signed)
    refused = burn(core, BurnTx(core.policy, b).encode(), b)
    assert isinstance(refused, Denied) and refused.reason == "TOKENS_PER_DAY_OVER_CAP"
    now[0] += 2 * 3600  # past midnight UTC
    assert isinstance(burn(core, BurnTx(core.policy, c).encode(), c), Signed)


def test_too_many_ids_and_unsupported_purpose(provisioner: Callable[..., Any]) -> None:
    core = make_core(provisioner(), **CAPS)
    ids = gen_ids("m", 11)
    outcome = burn(core, BurnTx(core.policy, ids).encode(), ids)
    assert isinstance(outcome, Denied) and outcome.reason == "TOO_MANY_GENERATION_IDS"
    ids = gen_ids("p", 2)
    outcome = burn(core, BurnTx(core.policy, ids).encode(), ids, purpose=0)
    assert isinstance(outcome, Denied) and outcome.reason == "PURPOSE_UNSUPPORTED"
    outcome = burn(core, BurnTx(core.policy, ids).encode(), [ids[0], ids[0]])
    assert isinstance(outcome, Denied) and outcome.invalid


def test_tokens_per_tx_cap(provisioner: Callable[..., Any]) -> None:
    core = make_core(provisioner(), **{**CAPS, "SIGNER_MAX_TOKENS_PER_TX": "2"})
    ids = gen_ids("t", 3)
    outcome = burn(core, BurnTx(core.policy, ids).encode(), ids)
    assert isinstance(outcome, Denied) and outcome.reason == "TOKENS_PER_TX_OVER_CAP"


def _ceremony_tx(core: SignerCore, quantity: int) -> bytes:
    cfg = core.policy
    body = {0: [[ZERO_TX, 0]], 1: [[cfg.custodial_address, [2_000_000, {cfg.policy_id: {cfg.asset_name: quantity}}]]],
            2: 200_000, 3: CURRENT_SLOT + 100, 9: {cfg.policy_id: {cfg.asset_name: quantity}}}
    return cbor2.dumps([body, {}, True, None])


def test_mint_ceremony_needs_the_flag(provisioner: Callable[..., Any]) -> None:
    prov = provisioner()
    core = make_core(prov, **CAPS)
    [off] = core.process([MintRequest(_ceremony_tx(core, 1000), 1000, "genesis supply", CURRENT_SLOT, "op")])
    assert isinstance(off, Denied) and off.reason == "MINT_CEREMONY_DISABLED"
    core.state.close()
    core.audit.close()
    core = make_core(prov, mint_ceremony=1000, **CAPS)
    [wrong] = core.process([MintRequest(_ceremony_tx(core, 999), 999, "typo", CURRENT_SLOT, "op")])
    assert isinstance(wrong, Denied) and wrong.reason == "CEREMONY_QUANTITY_MISMATCH"
    [other] = core.process([MintRequest(_ceremony_tx(core, 999), 1000, "body differs", CURRENT_SLOT, "op")])
    assert isinstance(other, Denied) and other.reason == "MINT_NOT_ALLOWED"
    tx = _ceremony_tx(core, 1000)
    [ok] = core.process([MintRequest(tx, 1000, "genesis supply", CURRENT_SLOT, "op")])
    assert isinstance(ok, Signed)
    signers = {key_hash(v) for v in verify_witnesses(ok.witness_set_cbor, tx_id_of(tx))}
    assert signers == {core.policy.payment_key_hash, core.policy.policy_key_hash}
    assert core.tokens_signed_today() == 0  # ceremonies are not burns


def test_batch_members_are_independent(provisioner: Callable[..., Any]) -> None:
    core = make_core(provisioner(), **CAPS)
    a, b = gen_ids("x", 2), gen_ids("y", 2)
    bad = BurnTx(core.policy, b, fee=10_000_000).encode()
    requests = [BurnRequest(BurnTx(core.policy, a).encode(), 1, tuple(a), "1", CURRENT_SLOT, "t"),
                BurnRequest(bad, 1, tuple(b), "2", CURRENT_SLOT, "t"),
                BurnRequest(BurnTx(core.policy, a, fee=170_000).encode(), 1, tuple(a), "3", CURRENT_SLOT, "t")]
    first, second, third = core.process(requests)
    assert isinstance(first, Signed)
    assert isinstance(second, Denied) and second.reason == "FEE_OVER_CAP"
    assert isinstance(third, Denied) and third.reason == "RESIGN_TTL_NOT_PASSED"

"""Issue #15's attacks on the policy, each reproduced against the real core with each key store, and each now
refused with its own reason; and the re-sign rule of issue #13 (allowed case and every refusal)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
import pytest

from signer.core import BurnRequest, Denied, MintRequest, Signed, SignerCore
from signer.policy import sink_min_utxo
from signer.tx import parse_output
from tests.signer.helpers import CURRENT_SLOT, ZERO_TX, BurnTx, gen_ids, make_core

ZERO_TIME = 1_800_000_000  # slot 0 of the fake clock below (2027-01-15)


class Clock:
    """The signer's clock, slot by slot (1-second slots from ZERO_TIME)."""

    def __init__(self, slot: int = CURRENT_SLOT) -> None:
        self.slot = slot

    def __call__(self) -> float:
        return float(ZERO_TIME + self.slot)


def core_with(provisioner: Callable[..., Any], mode: str = "mint", clock: Clock | None = None,
              **env: str) -> SignerCore:
    return make_core(provisioner(mode), clock=clock or Clock(), SIGNER_SYSTEM_START=str(ZERO_TIME), **env)


def burn(core: SignerCore, tx: bytes, ids: list[str], slot: int = CURRENT_SLOT) -> Any:
    [outcome] = core.process([BurnRequest(tx, 1, tuple(ids), "r", slot, "test")])
    return outcome


def refused(outcome: Any, reason: str, needle: str = "") -> None:
    assert isinstance(outcome, Denied) and not outcome.invalid, outcome
    assert outcome.reason == reason and needle in outcome.detail, outcome


# --- item 1: ADA leaving as fees or to the sink ------------------------------------------------------------

def test_default_caps_no_longer_let_ada_burn_through_fees_or_the_sink(provisioner: Callable[..., Any]) -> None:
    """The red team's shape: a 1-token burn paying a 2 ADA fee and 3 ADA to the sink, 10,000 times a day."""
    core = core_with(provisioner)
    ids = ["g-1"]
    refused(burn(core, BurnTx(core.policy, ids, fee=2_000_000).encode(), ids), "FEE_OVER_CAP", "a * size")
    sink_in_mint_mode = BurnTx(core.policy, ids).body()
    sink_in_mint_mode[1].append([core.policy.sink_address, 3_000_000])
    refused(burn(core, BurnTx(core.policy, ids).encode(sink_in_mint_mode), ids), "SINK_OUTPUT_NOT_ALLOWED")
    assert isinstance(burn(core, BurnTx(core.policy, ids).encode(), ids), Signed)  # the honest burn still signs


def test_address_mode_sink_carries_at_most_its_min_utxo(provisioner: Callable[..., Any]) -> None:
    core = core_with(provisioner, "address")
    ids = gen_ids("s", 3)
    honest = BurnTx(core.policy, ids)
    bound = sink_min_utxo(parse_output(honest.sink_output()), 4_310)
    refused(burn(core, BurnTx(core.policy, ids, sink_lovelace=3_000_000).encode(), ids), "SINK_ADA_OVER_CAP")
    refused(burn(core, BurnTx(core.policy, ids, sink_lovelace=bound + 1).encode(), ids), "SINK_ADA_OVER_CAP",
            "min-UTxO")
    two = honest.body()
    two[1].append(honest.sink_output())
    refused(burn(core, honest.encode(two), ids), "SINK_OUTPUT_NOT_ALLOWED", "exactly one")
    assert isinstance(burn(core, BurnTx(core.policy, ids, sink_lovelace=bound).encode(), ids), Signed)
    # The bound is the output's honest min-UTxO, padded for encoders (map form, 9-byte coin): ~0.03 ADA.
    ledger_min = honest.sink_output()[1][0]
    assert ledger_min <= bound <= ledger_min + 12 * 4_310


@pytest.mark.parametrize("mode", ["mint", "address"])
def test_lovelace_per_day_cap_counts_fees_and_sink_in_the_batch(provisioner: Callable[..., Any], mode: str) -> None:
    core = core_with(provisioner, mode, SIGNER_MAX_LOVELACE_PER_DAY="2500000")
    txs = [BurnTx(core.policy, gen_ids(f"l{i}", 2), fee=180_000) for i in range(3)]
    per_tx = 180_000 + (txs[0].sink_output()[1][0] if mode == "address" else 0)
    allowed = 2_500_000 // per_tx
    requests = [BurnRequest(t.encode(), 1, tuple(t.ids), f"r{i}", CURRENT_SLOT, "t") for i, t in enumerate(txs)]
    requests += [BurnRequest(BurnTx(core.policy, gen_ids(f"m{i}", 1), fee=180_000).encode(), 1,
                             (f"m{i}-0000",), "x", CURRENT_SLOT, "t") for i in range(allowed)]
    outcomes = core.process(requests)  # one batch: the open transaction's totals count too
    signed = [o for o in outcomes if isinstance(o, Signed)]
    assert len(signed) == allowed
    refused(outcomes[allowed], "LOVELACE_PER_DAY_OVER_CAP", "fees + sink")
    assert core.today().lovelace == allowed * per_tx


# --- item 2: the day cache forgot committed tokens -------------------------------------------------------

def test_day_total_survives_the_cache_clear_with_the_clock_stepping_back(provisioner: Callable[..., Any]) -> None:
    day = 86_400
    clock = Clock(0)
    core = core_with(provisioner, clock=clock, SIGNER_MAX_TOKENS_PER_DAY="10", SIGNER_SLOT_TOLERANCE="100000000")
    ids = iter(f"d-{i}" for i in range(100))

    def request(count: int) -> BurnRequest:
        batch = [next(ids) for _ in range(count)]
        return BurnRequest(BurnTx(core.policy, batch, ttl=clock.slot + 100).encode(), 1, tuple(batch), "r",
                           clock.slot, "t")

    assert isinstance(core.process([request(9)])[0], Signed)  # day 0: 9 of 10
    for d in range(1, 8):  # seven more days in the cache
        clock.slot = d * day
        assert isinstance(core.process([request(1)])[0], Signed)
    # One batch: a request on a new day (the 9th cached: the cache clears at commit), then the clock steps back
    # to day 0 for the next one. The bug rebuilt day 0 from this batch alone (1) and forgot the 9 before.
    clock.slot = 8 * day
    first = request(1)
    clock.slot = 100
    second = request(1)
    times = iter([ZERO_TIME + 8 * day, ZERO_TIME + 100.0])
    core._clock = lambda: next(times)
    assert all(isinstance(o, Signed) for o in core.process([first, second]))
    core._clock = clock
    refused(core.process([request(9)])[0], "TOKENS_PER_DAY_OVER_CAP", "10 tokens signed")


# --- item 3: the caller's slot bounded by the signer's clock ---------------------------------------------

def test_current_slot_far_from_the_signers_clock_is_refused(provisioner: Callable[..., Any]) -> None:
    core = core_with(provisioner)
    ids = gen_ids("t", 2)
    huge = 2**63 - 10_000
    stockpile = BurnTx(core.policy, ids, ttl=huge + 3_000).encode()  # valid for millennia
    refused(burn(core, stockpile, ids, slot=huge), "SLOT_OUT_OF_SYNC", "signer's clock")
    refused(burn(core, BurnTx(core.policy, ids, ttl=CURRENT_SLOT - 500).encode(), ids, slot=CURRENT_SLOT - 1_000),
            "SLOT_OUT_OF_SYNC")
    within = CURRENT_SLOT + 250  # inside the default tolerance (300 slots)
    assert isinstance(burn(core, BurnTx(core.policy, ids, ttl=within + 600).encode(), ids, slot=within), Signed)


# --- item 6: strictness gaps --------------------------------------------------------------------------

def test_metadata_types_are_exact(provisioner: Callable[..., Any]) -> None:
    core = core_with(provisioner)
    ids = gen_ids("v", 2)
    spec = BurnTx(core.policy, ids)
    for key, value, needle in (("v", True, "version"), ("n", True, "count")):
        meta = spec.metadata()
        meta[1967][key] = value
        refused(burn(core, spec.encode(aux=meta), ids), "METADATA_MISMATCH", needle)


def test_aux_data_tag_259_with_unknown_keys_is_refused(provisioner: Callable[..., Any]) -> None:
    core = core_with(provisioner)
    ids = gen_ids("a", 2)
    spec = BurnTx(core.policy, ids)
    refused(burn(core, spec.encode(aux=cbor2.CBORTag(259, {0: spec.metadata(), 7: []})), ids),
            "METADATA_MISMATCH", "unknown keys 7")
    assert isinstance(burn(core, spec.encode(aux=cbor2.CBORTag(259, {0: spec.metadata(), 1: []})), ids), Signed)


def test_duplicate_required_signers_are_refused(provisioner: Callable[..., Any]) -> None:
    core = core_with(provisioner)
    ids = gen_ids("q", 2)
    spec = BurnTx(core.policy, ids)
    body = spec.body()
    body[14] = [core.policy.payment_key_hash, core.policy.payment_key_hash]
    refused(burn(core, spec.encode(body), ids), "MALFORMED_TRANSACTION", "listed twice")


# --- item 7 (in-core part; the socket part is in test_server.py) -------------------------------------------

def test_ceremony_clock_and_quantity(provisioner: Callable[..., Any]) -> None:
    core = core_with(provisioner, SIGNER_MINT_CEREMONY_QUANTITY="500")
    cfg = core.policy
    body = {0: [[ZERO_TX, 0]], 1: [[cfg.custodial_address, [2_000_000, {cfg.policy_id: {cfg.asset_name: 500}}]]],
            2: 200_000, 3: 2**62, 9: {cfg.policy_id: {cfg.asset_name: 500}}}
    tx = cbor2.dumps([body, {}, True, None])
    [far] = core.process([MintRequest(tx, 500, "supply", 2**62 - 100, "op")])
    refused(far, "SLOT_OUT_OF_SYNC")
    [burn_there] = core.process([BurnRequest(b"", 1, ("x",), "r", CURRENT_SLOT, "op", endpoint="ceremony")])
    refused(burn_there, "CEREMONY_ONLY")


# --- issue #13: the re-sign rule ----------------------------------------------------------------------

OTHER_TX = b"\x77" * 32


def _resign_setup(provisioner: Callable[..., Any], **env: str) -> tuple[SignerCore, Clock, list[str], BurnTx]:
    clock = Clock()
    core = core_with(provisioner, clock=clock, **env)
    ids = gen_ids("rs", 3)
    first = BurnTx(core.policy, ids, ttl=CURRENT_SLOT + 200, inputs=[[ZERO_TX, 0], [ZERO_TX, 1]])
    assert isinstance(burn(core, first.encode(), ids), Signed)
    return core, clock, ids, first


def test_resign_after_ttl_spending_an_earlier_input_is_allowed_and_counted(provisioner: Callable[..., Any]) -> None:
    core, clock, ids, _ = _resign_setup(provisioner)
    clock.slot = CURRENT_SLOT + 200  # the first transaction's TTL has passed: the ledger no longer takes it
    rebuilt = BurnTx(core.policy, ids, fee=181_000, ttl=clock.slot + 300, inputs=[[ZERO_TX, 1], [OTHER_TX, 0]])
    outcome = burn(core, rebuilt.encode(), ids, slot=clock.slot)
    assert isinstance(outcome, Signed) and not outcome.replay, outcome
    assert core.tokens_signed_today() == 6  # counted against the caps again
    assert b'"resign_of":[' in core.audit.path.read_bytes()
    # The rebuilt one can itself be rebuilt later, only spending an input of both earlier transactions.
    clock.slot += 300
    third_only_new = BurnTx(core.policy, ids, fee=182_000, ttl=clock.slot + 100, inputs=[[OTHER_TX, 0]])
    refused(burn(core, third_only_new.encode(), ids, slot=clock.slot), "RESIGN_NO_SHARED_INPUT")
    third = BurnTx(core.policy, ids, fee=182_000, ttl=clock.slot + 100, inputs=[[ZERO_TX, 1]])
    assert isinstance(burn(core, third.encode(), ids, slot=clock.slot), Signed)


def test_resign_before_the_earlier_ttl_is_refused(provisioner: Callable[..., Any]) -> None:
    core, clock, ids, _ = _resign_setup(provisioner)
    clock.slot = CURRENT_SLOT + 199
    rebuilt = BurnTx(core.policy, ids, fee=181_000, ttl=clock.slot + 300, inputs=[[ZERO_TX, 0]])
    refused(burn(core, rebuilt.encode(), ids, slot=clock.slot), "RESIGN_TTL_NOT_PASSED", "valid until slot 10200")


def test_resign_without_a_shared_input_is_refused(provisioner: Callable[..., Any]) -> None:
    core, clock, ids, _ = _resign_setup(provisioner)
    clock.slot = CURRENT_SLOT + 500
    rebuilt = BurnTx(core.policy, ids, fee=181_000, ttl=clock.slot + 300, inputs=[[OTHER_TX, 0]])
    refused(burn(core, rebuilt.encode(), ids, slot=clock.slot), "RESIGN_NO_SHARED_INPUT")


def test_resign_with_a_fast_forwarded_slot_is_refused(provisioner: Callable[..., Any]) -> None:
    """The caller cannot claim the TTL passed: its slot is bounded by the signer's clock (item 3)."""
    core, _, ids, _ = _resign_setup(provisioner)
    claimed = CURRENT_SLOT + 10_000
    rebuilt = BurnTx(core.policy, ids, fee=181_000, ttl=claimed + 300, inputs=[[ZERO_TX, 0]])
    refused(burn(core, rebuilt.encode(), ids, slot=claimed), "SLOT_OUT_OF_SYNC")


def test_resign_counts_against_the_day_cap_again(provisioner: Callable[..., Any]) -> None:
    core, clock, ids, _ = _resign_setup(provisioner, SIGNER_MAX_TOKENS_PER_DAY="5")
    clock.slot = CURRENT_SLOT + 200
    rebuilt = BurnTx(core.policy, ids, fee=181_000, ttl=clock.slot + 300, inputs=[[ZERO_TX, 0]])
    refused(burn(core, rebuilt.encode(), ids, slot=clock.slot), "TOKENS_PER_DAY_OVER_CAP")

"""What Conway refuses while decoding (issue 16, items 1 and 3-5): each refusal beside its accepted neighbour.

Verdicts come from the ledger sources (cardano-ledger-conway-1.19.0.0 and the libraries it decodes with,
protocol version 10 as on mainnet), cited per test; the devnet answers a decoder failure with -32602.
"""

from __future__ import annotations

import hashlib

import cbor2
import pytest

from devnet.chain import Chain
from devnet.ledger.types import OutRef
from tests.devnet.conway_support import TxParts, enc, map_raw, refused_at_decode
from tests.devnet.ledger_support import make_chain


@pytest.fixture
def chain() -> Chain:
    return make_chain()


def _input(ref: OutRef, index_raw: bytes | None = None) -> bytes:
    return b"\x82" + enc(bytes.fromhex(ref.tx_id)) + (index_raw or enc(ref.index))


def _policy(chain: Chain, key: int = 0) -> tuple[list[object], bytes]:
    script = [0, chain.genesis.keys[key].key_hash]
    return script, hashlib.blake2b(b"\x00" + enc(script), digest_size=28).digest()


# -- item 1: duplicate set elements --------------------------------------------------------------------------


def test_duplicate_inputs_are_refused_in_every_encoding(chain: Chain) -> None:
    """Cardano.Ledger.Binary.Decoding.Decoder ``decodeSetLikeEnforceNoDuplicates`` (Conway's ``Set TxIn``
    decoder from protocol version 9): "Final number of elements ... does not match the total count". Tag 258
    is allowed, not required; equality is by value, so a second encoding of the same input is a duplicate."""
    tx = TxParts(chain)
    one = _input(tx.ref)
    assert tx.ref.index < 24
    alias = _input(tx.ref, b"\x18" + bytes([tx.ref.index]))  # the index in a longer head: the same value
    for raw_inputs in (b"\x82" + one + one,  # a plain array
                       b"\xd9\x01\x02\x82" + one + one,  # under tag 258, where cbor2 would merge them
                       b"\x82" + one + alias):  # fmt: skip
        tx.inputs_raw = raw_inputs
        refused_at_decode(chain, tx.cbor(), "duplicate", "inputs")
    tx.inputs_raw = b"\xd9\x01\x02\x81" + one  # neighbour: one input, tagged
    assert chain.submit(tx.cbor()).inputs == [tx.ref]


def test_duplicate_reference_inputs_and_required_signers_are_refused(chain: Chain) -> None:
    """The same set decoder for reference inputs and required signer hashes (``Set (KeyHash 'Witness)``)."""
    chain.fund(chain.genesis.keys[2].address, 3_000_000)
    chain.produce_blocks(1)
    other = chain.utxos_at(chain.genesis.keys[2].address_bytes)[0][0]
    tx = TxParts(chain)
    signer = enc(chain.genesis.keys[0].key_hash)
    tx.extra = [(enc(18), b"\x82" + _input(other) * 2)]
    refused_at_decode(chain, tx.cbor(), "duplicate", "reference inputs")
    tx.extra = [(enc(14), b"\xd9\x01\x02\x82" + signer * 2)]
    refused_at_decode(chain, tx.cbor(), "duplicate", "required signers")
    tx.extra = [(enc(18), b"\x81" + _input(other)), (enc(14), b"\x81" + signer)]  # neighbour: distinct
    accepted = chain.submit(tx.cbor())
    assert accepted.reference_inputs == [other] and accepted.required_signers == [signer[2:].hex()]


def test_a_repeated_vkey_witness_is_merged_not_refused(chain: Chain) -> None:
    """The witness set is not the body: at protocol versions 9-11 ``AlonzoTxWits``' decoder reads a
    non-empty list and builds a ``Set`` from it (``decodeNonEmptyList`` then ``Set.fromList``), so a repeated
    vkey witness is merged; only version 12 refuses it. An empty witness list is refused."""
    tx = TxParts(chain)
    tx.signers = [tx.key, tx.key]
    assert chain.submit(tx.cbor()).vkey_witnesses[0][0] == tx.key.vkey
    empty = TxParts(make_chain())
    empty.signers = []
    refused_at_decode(empty.chain, empty.cbor(), "empty")


# -- item 3: non-empty / non-zero -------------------------------------------------------------------------


def _mint_tx(chain: Chain, mint_raw: bytes, quantity: int = 1) -> TxParts:
    script, policy = _policy(chain)
    tx = TxParts(chain)
    tx.outputs = [{0: tx.key.address_bytes, 1: [2_000_000, {policy: {b"CREATE": quantity}}]}]
    tx.extra = [(enc(9), mint_raw)]
    tx.witness_extra = {1: [script]}
    return tx


def test_mint_must_be_non_empty_non_zero_and_int64(chain: Chain) -> None:
    """Cardano.Ledger.Conway.TxBody ``DecCBOR ConwayTxBodyRaw`` key 9: ``emptyFailure "Mint" "non-empty"``;
    Cardano.Ledger.Mary.Value ``decodeMultiAssetMaps`` ("Empty Assets are not allowed") and
    ``decodeIntegerBounded64`` ("mint field cannot be 0 (zero)", "overflow when decoding mint field")."""
    _, policy = _policy(chain)
    name = enc(b"CREATE")
    refused_at_decode(chain, _mint_tx(chain, b"\xa0").cbor(), "'Mint' must be non-empty")  # what pycardano emits
    refused_at_decode(chain, _mint_tx(chain, map_raw([(enc(policy), b"\xa0")])).cbor(), "Empty Assets")
    refused_at_decode(chain, _mint_tx(chain, enc({policy: {b"CREATE": 0}})).cbor(), "cannot be 0")
    refused_at_decode(chain, _mint_tx(chain, enc({policy: {b"CREATE": 1 << 63}})).cbor(), "overflow")
    refused_at_decode(chain, _mint_tx(chain, enc({policy: {b"CREATE": -(1 << 63) - 1}})).cbor(), "overflow")
    bignum = map_raw([(enc(policy), map_raw([(name, b"\xc2\x41\x01")]))])  # 1 as a tag-2 bignum
    refused_at_decode(chain, _mint_tx(chain, bignum).cbor(), "major type 0/1")
    top = (1 << 63) - 1  # neighbour: Int64's maximum decodes and is conserved into the output
    assert chain.submit(_mint_tx(chain, enc({policy: {b"CREATE": top}}), top).cbor()).mint == {
        policy.hex(): {b"CREATE".hex(): top}}


def test_output_values_need_positive_quantities_and_non_empty_policies(chain: Chain) -> None:
    """``decodeMultiAssetMaps`` for an output's ``MaryValue``: an empty policy map is refused and, in
    Conway, quantities are positive (a zero quantity no longer decodes and is no longer pruned)."""
    _, policy = _policy(chain)
    chain.fund(chain.genesis.keys[0].address, 5_000_000, {f"{policy.hex()}.41": 3})
    chain.produce_blocks(1)
    ref = next(r for r, o in chain.utxos_at(chain.genesis.keys[0].address_bytes) if o.assets)
    tx = TxParts(chain)
    tx.inputs_raw = b"\x82" + _input(tx.ref) + _input(ref)
    tx.in_lovelace += 5_000_000
    owner = tx.key.address_bytes
    for value in ([2_000_000, {policy: {b"A": 3, b"B": 0}}], [2_000_000, {policy: {b"A": 3}, b"\x01" * 28: {}}]):
        tx.outputs = [{0: owner, 1: value}]
        refused_at_decode(chain, tx.cbor(), "positive" if b"B" in value[1][policy] else "Empty Assets")
    tx.outputs = [{0: owner, 1: [2_000_000, {policy: {b"A": 3}}]}]  # neighbour
    assert chain.submit(tx.cbor()).outputs[0].assets == {policy.hex(): {"41": 3}}


@pytest.mark.parametrize(("key", "name"), [(14, "Required Signer Hashes"), (18, "Reference Inputs"),
                                           (13, "Collateral Inputs"), (4, "Certificates"), (5, "Withdrawals")])
def test_empty_optional_sets_are_refused(chain: Chain, key: int, name: str) -> None:
    """``DecCBOR ConwayTxBodyRaw``: ``fieldGuarded (emptyFailure name "non-empty")`` for keys 4, 5, 13, 14,
    18 (and 19, 20): "TxBody: '<name>' must be non-empty when supplied"."""
    tx = TxParts(chain)
    tx.extra = [(enc(key), b"\xa0" if key == 5 else b"\x80")]
    refused_at_decode(chain, tx.cbor(), f"'{name}' must be non-empty")
    if key == 14:  # neighbour: the key left out, or holding one signer
        tx.extra = [(enc(14), b"\x81" + enc(tx.key.key_hash))]
        chain.submit(tx.cbor())


# -- item 4: outputs to reward addresses ------------------------------------------------------------------


def test_an_output_cannot_pay_a_reward_address(chain: Chain) -> None:
    """Cardano.Ledger.Address ``decodeAddrStateT`` (an output's ``Addr``): headers 0xE_/0xF_ are reward
    accounts, which only ``RewardAccount`` decodes; in an output they fail to decode. The credentials are
    read exactly (a byte left over fails too). The enterprise address of the same key (header 0x6_) is the
    accepted neighbour."""
    key_hash = chain.genesis.keys[1].key_hash
    for header in (0xE0, 0xF0):
        tx = TxParts(chain)
        tx.outputs = [{0: bytes([header]) + key_hash, 1: 2_000_000}]
        refused_at_decode(chain, tx.cbor(), f"header 0x{header:02x}")
    for address, size in ((b"\x60" + key_hash + b"\x00", 29), (b"\x00" + key_hash * 2 + b"\x00", 57)):
        tx = TxParts(chain)  # the credentials must consume the bytes exactly
        tx.outputs = [{0: address, 1: 2_000_000}]
        refused_at_decode(chain, tx.cbor(), f"must be {size} bytes")
    tx = TxParts(chain)
    tx.outputs = [{0: b"\x60" + key_hash, 1: 2_000_000}]
    assert chain.submit(tx.cbor()).outputs[0].address == chain.genesis.keys[1].address


# -- item 5: duplicate map keys, bignum metadata, unknown body keys ----------------------------------------


def test_duplicate_map_keys_are_refused(chain: Chain) -> None:
    """``decodeMapLikeEnforceNoDuplicates`` (the ``Map`` decoder from protocol version 9) for a value's
    policies and asset names; the ``SparseKeyed`` output map decoder refuses a repeated key."""
    _, policy = _policy(chain)
    tx = _mint_tx(chain, enc({policy: {b"CREATE": 1}}))
    owner = tx.key.address_bytes
    names = map_raw([(enc(b"CREATE"), enc(1))])
    doubled_policy = b"\x82" + enc(2_000_000) + map_raw([(enc(policy), names), (enc(policy), names)])
    doubled_name = b"\x82" + enc(2_000_000) + map_raw([(enc(policy), map_raw([(enc(b"CREATE"), enc(1))] * 2))])
    for value_raw, word in ((doubled_policy, "duplicate policy"), (doubled_name, "duplicate asset name")):
        output = map_raw([(enc(0), enc(owner)), (enc(1), value_raw)])
        tx.outputs_raw = b"\x82" + output + enc({0: owner, 1: tx.change()})
        refused_at_decode(chain, tx.cbor(), word)
    output = map_raw([(enc(0), enc(owner)), (enc(1), enc(2_000_000)), (enc(1), enc(2_000_000))])
    tx.outputs_raw = b"\x82" + output + enc({0: owner, 1: tx.change()})
    refused_at_decode(chain, tx.cbor(), "duplicate", "output map keys")
    tx.outputs_raw = None  # neighbour
    chain.submit(tx.cbor())


def test_metadata_labels_unique_integers_plain(chain: Chain) -> None:
    """Cardano.Ledger.Shelley.TxAuxData ``decodeMetadatum``: integers are major type 0/1 (``decodeInteger``
    on ``TypeUInt``/``TypeNInt`` only), so a tag-2/3 bignum is not a metadatum; labels are a
    ``Map Word64 Metadatum`` (duplicates refused). A metadatum map is a list of pairs: its keys may repeat."""
    label = enc(674)
    for aux, word in ((map_raw([(label, enc(1)), (label, enc(2))]), "metadata labels"),
                      (map_raw([(label, b"\xc2\x41\x01")]), "tag"),
                      (map_raw([(label, b"\xf9\x3c\x00")]), "simple value or float")):  # fmt: skip
        tx = TxParts(chain)
        tx.aux = aux
        refused_at_decode(chain, tx.cbor(), word)
    tx = TxParts(chain)  # neighbour: the 64-bit extremes, and a metadatum map with a repeated key
    tx.aux = map_raw([(label, enc([(1 << 64) - 1, -(1 << 64), 0])),
                      (enc(675), map_raw([(enc("k"), enc(1)), (enc("k"), enc(2))]))])
    chain.submit(tx.cbor())


@pytest.mark.parametrize("key", [6, 10, 12, 23])
def test_unknown_body_keys_are_refused(chain: Chain, key: int) -> None:
    """``DecCBOR ConwayTxBodyRaw``: ``bodyFields n = field (\\_ t -> t) (Invalid n)`` for any key it does not
    list (6, the pre-Conway update proposal, included); a duplicate body key fails ``SparseKeyed`` too."""
    tx = TxParts(chain)
    tx.extra = [(enc(key), enc(0))]
    refused_at_decode(chain, tx.cbor(), f"unknown transaction body key {key}")
    tx.extra = [(enc(2), enc(tx.fee))]
    refused_at_decode(chain, tx.cbor(), "duplicate key 2")
    tx.extra = [(enc(15), enc(0))]  # neighbour: a known optional key (the network id)
    assert chain.submit(tx.cbor()).network_id == 0


def test_cbor2_alone_would_have_merged_these(chain: Chain) -> None:
    """Why the checks read the original bytes: cbor2 keeps the last of two equal map keys silently."""
    assert cbor2.loads(map_raw([(enc(1), enc(1)), (enc(1), enc(2))])) == {1: 2}


def test_pycardanos_empty_mint_is_refused_like_on_mainnet(chain: Chain) -> None:
    """pycardano 0.19 writes ``9: {}`` when a builder's mint is an empty MultiAsset: Conway refuses it
    (``emptyFailure "Mint" "non-empty"``), so a builder must leave the mint unset instead (the neighbour)."""
    from pycardano import MultiAsset, TransactionBuilder, TransactionOutput

    from tests.devnet.ledger_support import InProcessContext, address, signing_key, utxo_of

    def build(mint: MultiAsset | None) -> bytes:
        builder = TransactionBuilder(InProcessContext(chain))
        builder.add_input(utxo_of(chain))
        builder.add_output(TransactionOutput(address(chain, 1), 2_000_000))
        if mint is not None:
            builder.mint = mint
        return builder.build_and_sign([signing_key(chain)], change_address=address(chain)).to_cbor()

    empty = build(MultiAsset())
    assert cbor2.loads(empty)[0][9] == {}
    refused_at_decode(chain, empty, "'Mint' must be non-empty")
    chain.submit(build(None))

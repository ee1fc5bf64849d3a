"""A third-party client is the judge: pycardano's OgmiosV6ChainContext + KupoChainContextExtension build,
submit and find a token transaction on a real devnet process."""

from __future__ import annotations

import time

import pytest
from ogmios.errors import ResponseError
from pycardano import (
    Address,
    MultiAsset,
    Network,
    OgmiosV6ChainContext,
    PaymentSigningKey,
    ScriptPubkey,
    TransactionBuilder,
    TransactionOutput,
    Value,
)
from pycardano.backend.kupo import KupoChainContextExtension

from tests.support.devnet_fixture import DevnetProcess

FIND_TIMEOUT_S = 30.0


def wait_for(predicate, timeout_s: float = FIND_TIMEOUT_S):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.mark.slow
def test_pycardano_builds_submits_and_finds_a_token_tx(devnet: DevnetProcess) -> None:
    ogmios = OgmiosV6ChainContext(host="127.0.0.1", port=devnet.ogmios_port, network=Network.TESTNET,
                                  refetch_chain_tip_interval=0.1)
    context = KupoChainContextExtension(ogmios, kupo_url=devnet.kupo_url, refetch_chain_tip_interval=0.1)
    payer = PaymentSigningKey.from_cbor(devnet.genesis_key(0)["signing_key_cbor"])
    payer_address = Address(payer.to_verification_key().hash(), network=Network.TESTNET)
    artist = PaymentSigningKey.generate()
    artist_address = Address(artist.to_verification_key().hash(), network=Network.TESTNET)
    policy_key = PaymentSigningKey.generate()
    policy = ScriptPubkey(policy_key.to_verification_key().hash())
    token = MultiAsset.from_primitive({policy.hash().payload: {b"CREATE": 1_000}})

    assert context.utxos(payer_address), "genesis funds are visible through Kupo"
    builder = TransactionBuilder(context)
    builder.add_input_address(payer_address)
    builder.mint = token
    builder.native_scripts = [policy]
    builder.add_output(TransactionOutput(artist_address, Value(2_000_000, token)))
    tx = builder.build_and_sign([payer, policy_key], change_address=payer_address)
    context.submit_tx(tx)
    devnet.blocks(1)

    def artist_token_utxo():  # type: ignore[no-untyped-def]
        return [u for u in context.utxos(artist_address) if u.output.amount.multi_asset == token]

    (utxo,) = wait_for(artist_token_utxo)
    assert utxo.input.transaction_id == tx.id
    assert utxo.output.amount.coin == 2_000_000

    # The artist pays the tokens back, burning half: built on what pycardano found on the devnet.
    devnet.fund(str(artist_address), 5_000_000)
    devnet.blocks(1)
    wait_for(lambda: len(context.utxos(artist_address)) == 2)
    burn = MultiAsset.from_primitive({policy.hash().payload: {b"CREATE": -500}})
    back = TransactionBuilder(context)
    back.add_input_address(artist_address)
    back.mint = burn
    back.native_scripts = [policy]
    remaining = MultiAsset.from_primitive({policy.hash().payload: {b"CREATE": 500}})
    back.add_output(TransactionOutput(payer_address, Value(2_000_000, remaining)))
    burn_tx = back.build_and_sign([artist, policy_key], change_address=artist_address)
    context.submit_tx(burn_tx)
    devnet.blocks(1)
    found = wait_for(lambda: [u for u in context.utxos(payer_address) if u.input.transaction_id == burn_tx.id
                              and u.output.amount.multi_asset == remaining])
    assert len(found) == 1

    # And a replayed submission is refused with the Ogmios code for spent inputs.
    with pytest.raises(ResponseError, match="'code': 3117"):
        context.submit_tx(burn_tx)

"""End to end: a real signer process signs burns that the devnet's ledger accepts into a block.

The test plays the gateway's burner: it builds the transactions with pycardano, asks the signer over
gRPC (unix socket), splices the witnesses next to the original body bytes and submits over Ogmios HTTP.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import grpc
import pytest
from pycardano import Address as PyAddress
from pycardano import (
    AlonzoMetadata,
    Asset,
    AssetName,
    AuxiliaryData,
    Metadata,
    MultiAsset,
    ScriptHash,
    TransactionBody,
    TransactionInput,
    TransactionOutput,
    Value,
)

from common import merkle
from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc
from tests.signer.helpers import SignerProcess, gen_ids, verify_witnesses
from tests.support.devnet_fixture import DevnetProcess

pytestmark = pytest.mark.slow
FEE = 200_000  # above the devnet's min fee for these txs, under the signer's cap (a * size + b + margin)
SUPPLY = 100
FAKE_POLICY = "5e" * 28


class Chain:
    """The few Ogmios calls the test needs, over HTTP."""

    def __init__(self, dev: DevnetProcess) -> None:
        self.dev = dev

    def rpc(self, method: str, params: Any = None) -> Any:
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params is not None:
            body["params"] = params
        request = urllib.request.Request(self.dev.ogmios_http_url, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as err:
            return json.loads(err.read())

    def tip_slot(self) -> int:
        return int(self.rpc("queryNetwork/tip")["result"]["slot"])

    def utxos(self, address: str) -> list[dict[str, Any]]:
        return list(self.rpc("queryLedgerState/utxo", {"addresses": [address]})["result"])

    def submit_and_confirm(self, tx_cbor: bytes, tx_id: str) -> None:
        reply = self.rpc("submitTransaction", {"transaction": {"cbor": tx_cbor.hex()}})
        assert reply.get("result") == {"transaction": {"id": tx_id}}, reply
        produced = self.dev.blocks()
        assert any(tx_id in block["transaction_ids"] for block in produced["blocks"]), produced


def _value(lovelace: int, policy_id: str, asset_name: str, quantity: int) -> Value:
    if quantity == 0:
        return Value(lovelace)
    assets = MultiAsset({ScriptHash(bytes.fromhex(policy_id)): Asset({AssetName(bytes.fromhex(asset_name)): quantity})})
    return Value(lovelace, assets)


def _input(utxo: dict[str, Any]) -> TransactionInput:
    return TransactionInput.from_primitive([utxo["transaction"]["id"], utxo["index"]])


def assemble(body_bytes: bytes, witness_set: dict[int, Any], aux_bytes: bytes | None) -> bytes:
    """[body, witnesses, true, aux] with the body's original bytes (never re-encoded)."""
    return b"\x84" + body_bytes + cbor2.dumps(witness_set) + b"\xf5" + (aux_bytes if aux_bytes else b"\xf6")


def witness_set(reply_witnesses: bytes, policy_script: bytes) -> dict[int, Any]:
    witnesses: dict[int, Any] = {0: cbor2.loads(reply_witnesses)[0]}
    if policy_script:
        witnesses[1] = [cbor2.loads(policy_script)]
    return witnesses


@pytest.fixture
def signer_for(provisioner: Callable[..., Any], workdir: Path) -> Iterator[Callable[..., Any]]:
    procs: list[SignerProcess] = []

    def start(mode: str, dev: DevnetProcess, args: tuple[str, ...] = ()) -> tuple[SignerProcess, Any,
                                                                                   signer_pb2.Identity]:
        info = dev.info()  # the signer's clock follows the devnet's: its system start and slot length
        extra = {"SIGNER_SYSTEM_START": info["system_start"], "SIGNER_SLOT_LENGTH_S": str(info["slot_length_s"])}
        if mode == "address":
            extra["SIGNER_ASSET_POLICY_ID"] = FAKE_POLICY
        proc = SignerProcess(provisioner(mode, extra=extra).env, workdir, args)
        procs.append(proc)
        proc.wait_ready()
        channel = grpc.insecure_channel(proc.target)
        stub = signer_pb2_grpc.SignerServiceStub(channel)
        return proc, stub, stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5)

    yield start
    for proc in procs:
        proc.stop()


def _mint_supply(chain: Chain, stub: Any, ident: signer_pb2.Identity) -> dict[str, Any]:
    """The operator's mint ceremony: 100 $CREATE into the custodial address."""
    chain.dev.fund(ident.custodial_address, 50_000_000)
    chain.dev.blocks()
    [funded] = chain.utxos(ident.custodial_address)
    slot = chain.tip_slot()
    body = TransactionBody(
        inputs=[_input(funded)], fee=FEE, ttl=slot + 300,
        outputs=[TransactionOutput(PyAddress.from_primitive(ident.custodial_address),
                                   _value(50_000_000 - FEE, ident.policy_id, ident.asset.asset_name, SUPPLY))],
        mint=_value(0, ident.policy_id, ident.asset.asset_name, SUPPLY).multi_asset)
    body_bytes = body.to_cbor()
    reply = stub.SignMintCeremony(signer_pb2.SignMintCeremonyRequest(
        tx_cbor=assemble(body_bytes, {}, None), quantity=SUPPLY, operator_note="e2e supply", current_slot=slot),
        timeout=10)
    chain.submit_and_confirm(assemble(body_bytes, witness_set(reply.witness_set_cbor, ident.policy_script_cbor), None),
                             reply.tx_id)
    [minted] = chain.utxos(ident.custodial_address)
    return minted


def _burn_body(ident: signer_pb2.Identity, utxo: dict[str, Any], ids: list[str], slot: int,
               aux: AuxiliaryData) -> TransactionBody:
    n, policy, name = len(ids), ident.policy_id, ident.asset.asset_name
    lovelace = utxo["value"]["ada"]["lovelace"]
    custodial = PyAddress.from_primitive(ident.custodial_address)
    if ident.sink_mode == signer_pb2.SINK_MODE_MINT:
        outputs = [TransactionOutput(custodial, _value(lovelace - FEE, policy, name, SUPPLY - n))]
        mint = _value(0, policy, name, -n).multi_asset
    else:
        sink = PyAddress.from_primitive(ident.sink_address)
        sink_ada = 1_000_000
        for _ in range(3):  # the ledger's min-UTxO: (160 + output size) * coinsPerUTxOByte
            sink_ada = (160 + len(TransactionOutput(sink, _value(sink_ada, policy, name, n)).to_cbor())) * 4310
        outputs = [TransactionOutput(sink, _value(sink_ada, policy, name, n)),
                   TransactionOutput(custodial, _value(lovelace - FEE - sink_ada, policy, name, SUPPLY - n))]
        mint = None
    return TransactionBody(inputs=[_input(utxo)], outputs=outputs, fee=FEE, ttl=slot + 600, mint=mint,
                           auxiliary_data_hash=aux.hash())


def test_mint_mode_burn_lands_on_devnet(devnet: DevnetProcess, signer_for: Callable[..., Any]) -> None:
    """Mint ceremony, then a burn batch (negative mint), with each key store."""
    burn_on_devnet(devnet, signer_for, "mint")


@pytest.mark.parametrize("store", ["file"], indirect=True)  # the key store does not change address mode
def test_address_mode_burn_lands_on_devnet(devnet: DevnetProcess, signer_for: Callable[..., Any]) -> None:
    """Tokens sent to the unspendable 'any of []' script address."""
    burn_on_devnet(devnet, signer_for, "address")


def burn_on_devnet(devnet: DevnetProcess, signer_for: Callable[..., Any], mode: str) -> None:
    chain = Chain(devnet)
    proc, stub, ident = signer_for(mode, devnet, ("--mint-ceremony", str(SUPPLY)) if mode == "mint" else ())
    if mode == "mint":  # the operator's ceremony, on its own socket next to the main one
        ceremony_socket = Path(proc.target[len("unix:"):]).parent / "ceremony.sock"
        with grpc.insecure_channel(f"unix:{ceremony_socket}") as channel:
            utxo = _mint_supply(chain, signer_pb2_grpc.SignerServiceStub(channel), ident)
    else:
        devnet.fund(ident.custodial_address, 50_000_000, {f"{FAKE_POLICY}.{ident.asset.asset_name}": SUPPLY})
        devnet.blocks()
        [utxo] = chain.utxos(ident.custodial_address)

    ids = gen_ids(f"e2e-{mode}", 7)
    aux = AuxiliaryData(AlonzoMetadata(metadata=Metadata(
        {1967: {"v": 1, "n": len(ids), "root": merkle.merkle_root(ids).hex()}, 674: {"msg": ["creatorpass burn"]}})))
    slot = chain.tip_slot()
    body_bytes, aux_bytes = _burn_body(ident, utxo, ids, slot, aux).to_cbor(), aux.to_cbor()
    reply = stub.SignTransaction(signer_pb2.SignTransactionRequest(
        tx_cbor=assemble(body_bytes, {}, aux_bytes), purpose=signer_pb2.PURPOSE_BURN_BATCH, generation_ids=ids,
        request_id="e2e", current_slot=slot), timeout=10)
    verify_witnesses(reply.witness_set_cbor, bytes.fromhex(reply.tx_id))
    signed = assemble(body_bytes, witness_set(reply.witness_set_cbor, ident.policy_script_cbor), aux_bytes)
    chain.submit_and_confirm(signed, reply.tx_id)

    [change] = chain.utxos(ident.custodial_address)
    assert change["value"][ident.policy_id] == {ident.asset.asset_name: SUPPLY - len(ids)}
    if mode == "address":
        [sunk] = chain.utxos(ident.sink_address)
        assert sunk["value"][ident.policy_id] == {ident.asset.asset_name: len(ids)}

"""The signer as a real process: gRPC over a unix socket or mTLS, refusals on the wire, restarts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import grpc
import pytest

from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc
from signer.chain import bech32_decode
from signer.policy import Caps, PolicyConfig
from tests.signer.helpers import (
    CURRENT_SLOT,
    ZERO_TX,
    BurnTx,
    SignerProcess,
    gen_ids,
    python_env,
    run_cli,
    tx_id_of,
    verify_witnesses,
)

REFUSAL_KEY = "creatorpass-refusal-bin"


def policy_of(identity: signer_pb2.Identity) -> PolicyConfig:
    """What a client (the gateway's burner) learns from GetIdentity, as a PolicyConfig for BurnTx."""
    caps = identity.caps
    return PolicyConfig(
        network_id=identity.network_id,
        sink_mode="mint" if identity.sink_mode == signer_pb2.SINK_MODE_MINT else "address",
        custodial_address=bech32_decode(identity.custodial_address)[1],
        sink_address=bech32_decode(identity.sink_address)[1], policy_id=bytes.fromhex(identity.policy_id),
        asset_name=bytes.fromhex(identity.asset.asset_name), payment_key_hash=bytes.fromhex(identity.payment_key_hash),
        policy_key_hash=bytes.fromhex(identity.policy_key_hash) if identity.policy_key_hash else None,
        caps=Caps(caps.max_fee_lovelace, caps.max_sink_lovelace, caps.max_tokens_per_tx, caps.max_tokens_per_day,
                  caps.max_ttl_slots, caps.max_generation_ids))


def sign_request(tx: bytes, ids: list[str], request_id: str = "r") -> signer_pb2.SignTransactionRequest:
    return signer_pb2.SignTransactionRequest(tx_cbor=tx, purpose=signer_pb2.PURPOSE_BURN_BATCH, generation_ids=ids,
                                             request_id=request_id, current_slot=CURRENT_SLOT)


def refusal_of(error: grpc.RpcError) -> signer_pb2.Refusal:
    trailing = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    return signer_pb2.Refusal.FromString(trailing[REFUSAL_KEY])


@pytest.fixture
def running(provisioner: Callable[..., Any], workdir: Path) -> Iterator[Callable[..., SignerProcess]]:
    started: list[SignerProcess] = []

    def start(prov: Any = None, args: tuple[str, ...] = ()) -> SignerProcess:
        prov = prov or provisioner()
        proc = SignerProcess(prov.env, workdir, args)
        started.append(proc)
        proc.wait_ready()
        return proc

    yield start
    for proc in started:
        proc.stop()


def stub_for(proc: SignerProcess) -> tuple[grpc.Channel, signer_pb2_grpc.SignerServiceStub]:
    channel = grpc.insecure_channel(proc.target)
    return channel, signer_pb2_grpc.SignerServiceStub(channel)


def test_identity_sign_and_refuse_over_grpc(running: Callable[..., SignerProcess], store: str) -> None:
    proc = running()
    channel, stub = stub_for(proc)
    with channel:
        identity = stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5)
        assert identity.key_store == store and identity.sink_mode == signer_pb2.SINK_MODE_MINT
        assert identity.custodial_address.startswith("addr_test1v") and identity.sink_address.startswith("addr_test1w")
        assert len(identity.policy_id) == 56 and identity.policy_script_cbor[:2] == b"\x82\x00"
        assert not identity.mint_ceremony_enabled
        cfg = policy_of(identity)
        ids = gen_ids("grpc", 3)
        tx = BurnTx(cfg, ids).encode()
        reply = stub.SignTransaction(sign_request(tx, ids), timeout=10)
        assert reply.tx_id == tx_id_of(tx).hex() and len(reply.audit_id) == 64
        assert len(verify_witnesses(reply.witness_set_cbor, tx_id_of(tx))) == 2

        with pytest.raises(grpc.RpcError) as refused:
            stub.SignTransaction(sign_request(BurnTx(cfg, ids, fee=170_000).encode(), ids), timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        refusal = refusal_of(refused.value)
        assert refusal.reason == signer_pb2.RESIGN_TTL_NOT_PASSED and len(refusal.audit_id) == 64
        assert "RESIGN_TTL_NOT_PASSED" in refused.value.details()  # type: ignore[attr-defined]

        with pytest.raises(grpc.RpcError) as invalid:
            stub.SignTransaction(sign_request(tx, []), timeout=10)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]

        body = {0: [[ZERO_TX, 0]], 1: [[cfg.custodial_address, 2_000_000]], 2: 200_000, 3: CURRENT_SLOT + 10,
                9: {cfg.policy_id: {cfg.asset_name: 10}}}
        with pytest.raises(grpc.RpcError) as ceremony:
            stub.SignMintCeremony(signer_pb2.SignMintCeremonyRequest(
                tx_cbor=cbor2.dumps([body, {}, True, None]), quantity=10, current_slot=CURRENT_SLOT), timeout=10)
        assert refusal_of(ceremony.value).reason == signer_pb2.MINT_CEREMONY_DISABLED
        assert stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5).tokens_signed_today == 3
    assert proc.stop() == 0  # graceful on SIGTERM
    assert '"event": "signer_started"' in proc.log()
    assert run_cli(["audit", "verify", str(Path(proc.env["SIGNER_DATA_DIR"]) / "audit.jsonl")], {}).returncode == 0


@pytest.mark.parametrize("fsync", ["true", "false"])  # the two commit paths: on the loop, and in the handler
def test_state_survives_kill_9(running: Callable[..., SignerProcess], provisioner: Callable[..., Any],
                               fsync: str) -> None:
    prov = provisioner(extra={"SIGNER_FSYNC": fsync})
    proc = running(prov)
    channel, stub = stub_for(proc)
    ids = gen_ids("k9", 4)
    with channel:
        cfg = policy_of(stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5))
        tx = BurnTx(cfg, ids).encode()
        first = stub.SignTransaction(sign_request(tx, ids), timeout=10)
    proc.kill9()
    proc = running(prov)
    channel, stub = stub_for(proc)
    with channel:
        assert stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5).tokens_signed_today == 4
        with pytest.raises(grpc.RpcError) as refused:
            stub.SignTransaction(sign_request(BurnTx(cfg, ids[:2], fee=171_000).encode(), ids[:2]), timeout=10)
        assert refusal_of(refused.value).reason == signer_pb2.RESIGN_TTL_NOT_PASSED
        again = stub.SignTransaction(sign_request(tx, ids), timeout=10)  # the identical retry is idempotent
        assert again.witness_set_cbor == first.witness_set_cbor
        assert stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5).tokens_signed_today == 4


def test_second_signer_on_same_data_dir_is_refused(running: Callable[..., SignerProcess],
                                                    provisioner: Callable[..., Any], workdir: Path) -> None:
    prov = provisioner()
    running(prov)
    other = run_cli(["serve"], {**prov.env, "SIGNER_LISTEN": f"unix:{workdir / 'other.sock'}"}, timeout_s=30)
    assert other.returncode == 1 and "another signer is using" in other.stderr


def _ceremony_tx(cfg: PolicyConfig, quantity: int, fee: int = 200_000) -> bytes:
    body = {0: [[ZERO_TX, 0]], 1: [[cfg.custodial_address, [2_000_000, {cfg.policy_id: {cfg.asset_name: quantity}}]]],
            2: fee, 3: CURRENT_SLOT + 10, 9: {cfg.policy_id: {cfg.asset_name: quantity}}}
    return cbor2.dumps([body, {}, True, None])


def _ceremony(stub: signer_pb2_grpc.SignerServiceStub, tx: bytes, quantity: int) -> Any:
    return stub.SignMintCeremony(signer_pb2.SignMintCeremonyRequest(
        tx_cbor=tx, quantity=quantity, operator_note="initial supply", current_slot=CURRENT_SLOT), timeout=10)


def _refused(call: Callable[[], Any]) -> int:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return refusal_of(refused.value).reason


def test_mint_ceremony_on_its_own_socket_for_the_stated_quantity(running: Callable[..., SignerProcess]) -> None:
    """Item 7: the operator states the quantity; only the ceremony socket mints, exactly that, once."""
    proc = running(args=("--mint-ceremony", "10"))
    ceremony_path = Path(proc.target[len("unix:"):]).parent / "ceremony.sock"
    assert ceremony_path.stat().st_mode & 0o777 == 0o600  # the gateway (the directory's group) cannot connect
    ceremony_target = f"unix:{ceremony_path}"
    channel, stub = stub_for(proc)
    with channel, grpc.insecure_channel(ceremony_target) as ceremony_channel:
        ceremony = signer_pb2_grpc.SignerServiceStub(ceremony_channel)
        identity = stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5)
        assert identity.mint_ceremony_enabled
        cfg = policy_of(identity)
        tx = _ceremony_tx(cfg, 10)
        # The main socket (the gateway's) never mints, even while the ceremony runs.
        assert _refused(lambda: _ceremony(stub, tx, 10)) == signer_pb2.MINT_CEREMONY_DISABLED
        # The ceremony socket signs nothing else, and no other quantity.
        ids = gen_ids("cer", 2)
        assert _refused(lambda: ceremony.SignTransaction(sign_request(BurnTx(cfg, ids).encode(), ids),
                                                         timeout=10)) == signer_pb2.CEREMONY_ONLY
        assert _refused(lambda: _ceremony(ceremony, _ceremony_tx(cfg, 10_000), 10_000)) == \
            signer_pb2.CEREMONY_QUANTITY_MISMATCH
        reply = _ceremony(ceremony, tx, 10)
        assert len(verify_witnesses(reply.witness_set_cbor, tx_id_of(tx))) == 2
        assert _ceremony(ceremony, tx, 10).witness_set_cbor == reply.witness_set_cbor  # identical retry
        assert _refused(lambda: _ceremony(ceremony, _ceremony_tx(cfg, 10, fee=199_000), 10)) == \
            signer_pb2.CEREMONY_USED
    assert "mint_ceremony_enabled" in proc.log()


def test_tcp_requires_tls(provisioner: Callable[..., Any]) -> None:
    prov = provisioner()
    result = run_cli(["serve"], {**prov.env, "SIGNER_LISTEN": "127.0.0.1:0"}, timeout_s=30)
    assert result.returncode == 2 and "SIGNER_TLS_CERT" in result.stderr


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_mtls(running: Callable[..., SignerProcess], provisioner: Callable[..., Any], workdir: Path) -> None:
    certs = workdir / "certs"
    made = run_cli(["certs", "generate", "--out", str(certs)], {})
    assert made.returncode == 0, made.stderr
    assert (certs / "client.key").stat().st_mode & 0o777 == 0o600
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prov = provisioner(extra={"SIGNER_LISTEN": f"127.0.0.1:{port}", "SIGNER_TLS_CERT": str(certs / "server.pem"),
                              "SIGNER_TLS_KEY": str(certs / "server.key"), "SIGNER_TLS_CA": str(certs / "ca.pem")})
    client = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), (certs / "client.key").read_bytes(),
                                          (certs / "client.pem").read_bytes())
    proc = SignerProcess(prov.env, workdir)
    try:
        proc.wait_ready(tls=client, target=f"localhost:{port}")
        with grpc.secure_channel(f"localhost:{port}", client) as channel:
            stub = signer_pb2_grpc.SignerServiceStub(channel)
            cfg = policy_of(stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5))
            ids = gen_ids("tls", 2)
            stub.SignTransaction(sign_request(BurnTx(cfg, ids).encode(), ids), timeout=10)
        anonymous = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes())
        with grpc.secure_channel(f"localhost:{port}", anonymous) as channel, pytest.raises(grpc.RpcError):
            signer_pb2_grpc.SignerServiceStub(channel).GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5)
    finally:
        proc.stop()
    audit = (Path(prov.env["SIGNER_DATA_DIR"]) / "audit.jsonl").read_text()
    assert '"caller":"cn:creatorpass-gateway"' in audit


def test_health_check_subcommand_follows_the_running_signer(running: Callable[..., SignerProcess],
                                                            provisioner: Callable[..., Any]) -> None:
    prov = provisioner()

    def health_check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "signer", "health-check"], env=python_env(prov.env),
                              capture_output=True, text=True, timeout=60)

    down = health_check()
    assert down.returncode == 1
    assert "UNAVAILABLE" in down.stderr
    proc = running(prov)
    up = health_check()
    assert up.returncode == 0, up.stderr
    assert "SERVING" in up.stdout
    proc.stop()
    assert health_check().returncode == 1

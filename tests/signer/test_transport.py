"""Issue #15 items 4, 5 and 8 against the signer as a real process: the unix socket's directory, modes and
peer credentials; the mTLS allow-list; every refusal audited, the audit log bounded, /health on the disk."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import stat
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc
from tests.signer.helpers import BurnTx, SignerProcess, gen_ids, run_cli
from tests.signer.test_server import policy_of, refusal_of, sign_request
from tests.support.devnet_fixture import free_ports


def audit_lines(data_dir: str) -> list[dict[str, Any]]:
    files = [*sorted(Path(data_dir).glob("audit-*.jsonl")), Path(data_dir) / "audit.jsonl"]
    return [json.loads(line) for f in files if f.exists() for line in f.read_text().splitlines()]


@pytest.fixture
def start(provisioner: Callable[..., Any], workdir: Path) -> Iterator[Callable[..., SignerProcess]]:
    procs: list[SignerProcess] = []

    def run(extra: dict[str, str] | None = None, prov: Any = None) -> SignerProcess:
        proc = SignerProcess((prov or provisioner(extra=extra)).env, workdir)
        procs.append(proc)
        proc.wait_ready()
        return proc

    yield run
    for proc in procs:
        proc.stop()


# --- item 4: the unix socket ------------------------------------------------------------------------

def test_socket_directory_modes_and_peer_credentials_in_the_audit(start: Callable[..., SignerProcess],
                                                                   workdir: Path) -> None:
    sock_dir = workdir / "run"
    proc = start({"SIGNER_LISTEN": f"unix:{sock_dir / 'signer.sock'}"})
    assert stat.S_IMODE(sock_dir.stat().st_mode) == 0o750 and sock_dir.stat().st_uid == os.geteuid()
    assert stat.S_IMODE((sock_dir / "signer.sock").stat().st_mode) == 0o660
    assert stat.S_IMODE((sock_dir / ".internal").stat().st_mode) == 0o700
    with grpc.insecure_channel(proc.target) as channel:
        stub = signer_pb2_grpc.SignerServiceStub(channel)
        cfg = policy_of(stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5))
        ids = gen_ids("peer", 2)
        stub.SignTransaction(sign_request(BurnTx(cfg, ids).encode(), ids), timeout=10)
    [line] = audit_lines(proc.env["SIGNER_DATA_DIR"])
    assert line["request"]["peer"] == {"transport": "unix", "uid": os.getuid(), "gid": os.getgid(),
                                       "pid": os.getpid()}
    assert line["request"]["caller"] == f"uid:{os.getuid()} pid:{os.getpid()}"
    # A connection that bypasses the public socket has no credentials: refused, and audited.
    internal = f"unix:{sock_dir / '.internal' / 'grpc.sock'}"
    with grpc.insecure_channel(internal) as channel, pytest.raises(grpc.RpcError) as direct:
        signer_pb2_grpc.SignerServiceStub(channel).SignTransaction(sign_request(b"\x80", ["x"]), timeout=10)
    assert refusal_of(direct.value).reason == signer_pb2.CALLER_NOT_ALLOWED
    assert audit_lines(proc.env["SIGNER_DATA_DIR"])[-1]["reason"] == "CALLER_NOT_ALLOWED"
    assert proc.stop() == 0
    assert not (sock_dir / "signer.sock").exists()


@pytest.mark.parametrize("store", ["file"], indirect=True)  # transport: the key store does not matter
@pytest.mark.parametrize("squat", ["foreign-file", "live-socket", "foreign-dir", "shared-dir"])
def test_a_squatted_socket_path_is_refused_and_left_alone(provisioner: Callable[..., Any], workdir: Path,
                                                          squat: str) -> None:
    sock_dir = workdir / "run"
    sock_dir.mkdir(mode=0o750)
    path = sock_dir / "signer.sock"
    listener = None
    if squat == "foreign-file":
        path.write_text("not yours")
        os.chown(path, 54321, 54321)  # the tests run as root: another user's file
    elif squat == "live-socket":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
    elif squat == "foreign-dir":
        os.chown(sock_dir, 54321, 54321)
    else:
        os.chmod(sock_dir, 0o1777)
    prov = provisioner(extra={"SIGNER_LISTEN": f"unix:{path}"})
    result = run_cli(["serve"], prov.env, timeout_s=60)
    if listener:
        listener.close()
    assert result.returncode != 0
    expected = {"foreign-file": "refusing to replace", "live-socket": "another server is listening",
                "foreign-dir": "belongs to uid 54321", "shared-dir": "world-writable or sticky"}[squat]
    assert expected in result.stderr + result.stdout
    if squat in ("foreign-file", "live-socket"):
        assert path.exists()  # never unlinked


# --- item 5: mTLS allow-list -----------------------------------------------------------------------

def _issue_client(certs: Path, cn: str) -> tuple[bytes, bytes]:
    """Another client certificate from the same CA (what the red team had: any cert the CA signed)."""
    ca = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((certs / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_mtls_allow_list_refuses_other_certificates_of_the_ca(provisioner: Callable[..., Any],
                                                              workdir: Path) -> None:
    certs = workdir / "certs"
    assert run_cli(["certs", "generate", "--out", str(certs)], {}).returncode == 0
    intruder_pem, intruder_key = _issue_client(certs, "intruder")
    pinned_pem, pinned_key = _issue_client(certs, "pinned-by-hash")
    pinned_hash = x509.load_pem_x509_certificate(pinned_pem).fingerprint(hashes.SHA256()).hex()
    [port] = free_ports(1)
    prov = provisioner(extra={
        "SIGNER_LISTEN": f"127.0.0.1:{port}", "SIGNER_TLS_CERT": str(certs / "server.pem"),
        "SIGNER_TLS_KEY": str(certs / "server.key"), "SIGNER_TLS_CA": str(certs / "ca.pem"),
        "SIGNER_TLS_ALLOWED_CLIENTS": f"cn:creatorpass-gateway,sha256:{pinned_hash}"})
    ca = (certs / "ca.pem").read_bytes()
    gateway = grpc.ssl_channel_credentials(ca, (certs / "client.key").read_bytes(), (certs / "client.pem").read_bytes())
    proc = SignerProcess(prov.env, workdir)
    try:
        proc.wait_ready(tls=gateway, target=f"localhost:{port}")
        with grpc.secure_channel(f"localhost:{port}", gateway) as channel:
            cfg = policy_of(signer_pb2_grpc.SignerServiceStub(channel).GetIdentity(signer_pb2.GetIdentityRequest(),
                                                                                  timeout=5))
        for name, pem, key, allowed in (("intruder", intruder_pem, intruder_key, False),
                                        ("pinned", pinned_pem, pinned_key, True)):
            creds = grpc.ssl_channel_credentials(ca, key, pem)
            ids = gen_ids(name, 2)
            with grpc.secure_channel(f"localhost:{port}", creds) as channel:
                stub = signer_pb2_grpc.SignerServiceStub(channel)
                if allowed:
                    stub.SignTransaction(sign_request(BurnTx(cfg, ids).encode(), ids), timeout=10)
                    continue
                with pytest.raises(grpc.RpcError) as refused:
                    stub.SignTransaction(sign_request(BurnTx(cfg, ids).encode(), ids), timeout=10)
                assert refusal_of(refused.value).reason == signer_pb2.CALLER_NOT_ALLOWED
    finally:
        proc.stop()
    lines = audit_lines(prov.env["SIGNER_DATA_DIR"])
    intruder_hash = x509.load_pem_x509_certificate(intruder_pem).fingerprint(hashes.SHA256()).hex()
    assert [(x["decision"], x["request"]["peer"]["subject"], x["request"]["peer"]["cert_sha256"]) for x in lines] == [
        ("deny", "CN=intruder", intruder_hash), ("allow", "CN=pinned-by-hash", pinned_hash)]


# --- item 8: every refusal audited, bounded growth, /health on the disk -------------------------------

def test_pre_check_refusals_are_audited_and_the_log_stays_bounded(start: Callable[..., SignerProcess]) -> None:
    health_port = free_ports(1)[0]
    proc = start({"SIGNER_AUDIT_MAX_FILE_BYTES": "8192", "SIGNER_AUDIT_KEEP_FILES": "2",
                  "SIGNER_METRICS_LISTEN": f"127.0.0.1:{health_port}",
                  "SIGNER_DISK_MIN_FREE_BYTES": str(1 << 60)})  # no disk is that big: "nearly full"
    data_dir = proc.env["SIGNER_DATA_DIR"]
    with grpc.insecure_channel(proc.target) as channel:
        stub = signer_pb2_grpc.SignerServiceStub(channel)
        for request, needle in ((sign_request(b"\x00" * 20_000, ["big"]), "20000 bytes"),
                                (sign_request(b"\x80", [f"i{i}" for i in range(401)]), "far too many")):
            with pytest.raises(grpc.RpcError) as invalid:
                stub.SignTransaction(request, timeout=10)
            assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
            assert needle in invalid.value.details()  # type: ignore[attr-defined]
        first = audit_lines(data_dir)
        assert [(x["decision"], x["request"]["tx_bytes"]) for x in first] == [("invalid", 20_000), ("invalid", 1)]
        for i in range(150):  # a flood of refusals
            with pytest.raises(grpc.RpcError):
                stub.SignTransaction(sign_request(b"\xff", [f"f{i}"]), timeout=10)
    files = sorted(Path(data_dir).glob("audit*.jsonl"))
    assert 2 <= len(files) <= 3 and sum(f.stat().st_size for f in files) <= 3 * 8192
    verified = run_cli(["audit", "verify", str(Path(data_dir) / "audit.jsonl")], {})
    assert verified.returncode == 0 and "older files rotated away" in verified.stdout, verified.stdout
    with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/health", timeout=10) as reply:
        health = json.loads(reply.read())
    assert reply.status == 200 and health["status"] == "degraded" and health["disk"]["nearly_full"] is True
    assert "disk" in health["detail"] and health["audit"]["rotated_files"] == len(files) - 1

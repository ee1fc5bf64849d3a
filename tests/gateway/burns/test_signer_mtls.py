"""The burner's signer client over mTLS (a signer in another pod: Kubernetes), against a real signer process."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest

from common.grpcutil import TlsFiles
from common.settings import ConfigError
from gateway.burns.signer import GrpcSigner, SignerError
from gateway.settings import GatewaySettings
from tests.signer.helpers import SignerProcess, provision, run_cli, short_tmp


@pytest.fixture
def mtls_signer() -> tuple[str, Path]:
    workdir = short_tmp()
    certs = workdir / "certs"
    made = run_cli(["certs", "generate", "--out", str(certs)], {})
    assert made.returncode == 0, made.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prov = provision("file", workdir, extra={
        "SIGNER_LISTEN": f"127.0.0.1:{port}", "SIGNER_TLS_CERT": str(certs / "server.pem"),
        "SIGNER_TLS_KEY": str(certs / "server.key"), "SIGNER_TLS_CA": str(certs / "ca.pem")})
    proc = SignerProcess(prov.env, workdir)
    try:
        import grpc

        client = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), (certs / "client.key").read_bytes(),
                                              (certs / "client.pem").read_bytes())
        proc.wait_ready(tls=client, target=f"localhost:{port}")
        yield f"localhost:{port}", certs
    finally:
        proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_burners_client_reaches_a_signer_over_mtls(mtls_signer: tuple[str, Path]) -> None:
    target, certs = mtls_signer
    tls = TlsFiles(certs / "client.pem", certs / "client.key", certs / "ca.pem")

    async def ask(client: GrpcSigner) -> object:
        return await client.identity()

    identity = asyncio.run(ask(GrpcSigner(target, tls=tls, timeout_s=10)))
    assert getattr(identity, "policy_id", "")  # the signer answered GetIdentity
    with pytest.raises(SignerError):  # without a client certificate the signer does not talk
        asyncio.run(ask(GrpcSigner(target, timeout_s=5)))


def test_a_tcp_signer_target_requires_the_three_tls_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="requires mTLS"):
        GatewaySettings(state_dir=tmp_path, signer_target="signer:50051").validate()
    with pytest.raises(ConfigError, match="go together"):
        GatewaySettings(state_dir=tmp_path, signer_target="signer:50051", signer_tls_ca=tmp_path / "ca.pem").validate()
    GatewaySettings(state_dir=tmp_path, signer_target="signer:50051", signer_tls_ca=tmp_path / "ca.pem",
                    signer_tls_cert=tmp_path / "c.pem", signer_tls_key=tmp_path / "c.key").validate()

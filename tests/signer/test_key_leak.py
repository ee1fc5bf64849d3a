"""A full run — CLI, start-up, signatures, every kind of refusal, errors, metrics — leaks no key material.

The private keys (raw, hex, base64, bech32 ``ed25519_sk1…``, the cardano-cli CBOR hex) and the
passphrase/PIN must not appear in stderr, gRPC errors and trailers, the audit log, the state database or
/metrics.
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc
from signer.chain import bech32_encode
from tests.signer.helpers import CURRENT_SLOT, BurnTx, SignerProcess, gen_ids, run_cli
from tests.signer.test_server import policy_of, sign_request
from tests.support.devnet_fixture import free_ports


def needles(seeds: list[bytes], secrets: list[str]) -> list[bytes]:
    found: list[bytes] = []
    for seed in seeds:
        found += [seed, seed.hex().encode(), seed.hex().upper().encode(), ("5820" + seed.hex()).encode(),
                  base64.b64encode(seed), base64.b64encode(seed).rstrip(b"="),
                  bech32_encode("ed25519_sk", seed).encode()]
        # Also the first half alone: a truncated dump is still a leak.
        found.append(seed.hex()[:32].encode())
    found += [s.encode() for s in secrets]
    return found


def _calls(stub: Any, cfg: Any) -> list[bytes]:
    """Exercise every path; return what came back on the wire (details and trailers)."""
    wire: list[bytes] = []
    ids = gen_ids("leak", 3)

    def call(request: Any, mint: bool = False) -> None:
        try:
            reply = (stub.SignMintCeremony if mint else stub.SignTransaction)(request, timeout=10)
            wire.append(reply.SerializeToString())
        except grpc.RpcError as err:
            wire.append((err.details() or "").encode())  # type: ignore[attr-defined]
            wire.extend(v if isinstance(v, bytes) else v.encode() for _, v in err.trailing_metadata() or ())  # type: ignore[attr-defined]

    call(sign_request(BurnTx(cfg, ids).encode(), ids))
    call(sign_request(BurnTx(cfg, ids, fee=170_000).encode(), ids))                   # reused ids
    call(sign_request(BurnTx(cfg, ids[:1], fee=9_999_999).encode(), ["z"]))          # fee cap
    call(sign_request(b"\x84\x00garbage", ["y"]))                                      # malformed
    call(sign_request(BurnTx(cfg, ["q"]).encode(), []))                               # invalid argument
    call(signer_pb2.SignMintCeremonyRequest(tx_cbor=cbor2.dumps([{}, {}, True, None]), quantity=1,
                                            current_slot=CURRENT_SLOT), mint=True)   # ceremony disabled
    wire.append(stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5).SerializeToString())
    return wire


def test_no_key_material_anywhere(provisioner: Callable[..., Any], workdir: Path, store: str) -> None:
    prov = provisioner(import_keys=True)
    seeds = [k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption()) for k in prov.seeds.values()]
    assert len(seeds) == 2
    secret_files = [prov.env[k] for k in ("SIGNER_PASSPHRASE_FILE", "SIGNER_PKCS11_PIN_FILE") if k in prov.env]
    secrets = [Path(f).read_text().strip() for f in secret_files]
    [metrics_port] = free_ports(1)
    env = {**prov.env, "SIGNER_LOG_LEVEL": "DEBUG", "SIGNER_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"}

    haystacks: dict[str, bytes] = {}
    shown = run_cli(["keys", "show"], env)
    assert shown.returncode == 0, shown.stderr
    haystacks["keys show"] = (shown.stdout + shown.stderr).encode()

    proc = SignerProcess(env, workdir)
    try:
        proc.wait_ready()
        with grpc.insecure_channel(proc.target) as channel:
            stub = signer_pb2_grpc.SignerServiceStub(channel)
            cfg = policy_of(stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5))
            haystacks["grpc"] = b"\n".join(_calls(stub, cfg))
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
            haystacks["metrics"] = reply.read()
        assert b"creatorpass_signer_decisions_total" in haystacks["metrics"]
    finally:
        proc.stop()
    haystacks["signer stderr"] = proc.stderr_path.read_bytes()
    assert b'"event": "refused"' in haystacks["signer stderr"]

    # Failures that talk about keys: wrong passphrase / PIN, and a missing key file.
    if store == "file":
        wrong = workdir / "wrong"
        wrong.write_text("not the passphrase at all\n")
        bad = run_cli(["serve"], {**env, "SIGNER_PASSPHRASE_FILE": str(wrong)})
    else:
        wrong = workdir / "wrong"
        wrong.write_text("0000-wrong-pin\n")
        bad = run_cli(["serve"], {**env, "SIGNER_PKCS11_PIN_FILE": str(wrong)})
    assert bad.returncode != 0
    haystacks["failed start"] = (bad.stdout + bad.stderr).encode()

    for path in Path(env["SIGNER_DATA_DIR"]).iterdir():
        if path.is_file():
            haystacks[path.name] = path.read_bytes()
    assert "audit.jsonl" in haystacks and "state.sqlite3" in haystacks

    for name, haystack in haystacks.items():
        for needle in needles(seeds, secrets):
            assert needle not in haystack, f"key material or secret found in {name}"


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_keys_init_output_has_no_secret(provisioner: Callable[..., Any], workdir: Path) -> None:
    prov = provisioner()
    env = {**prov.env, "SIGNER_DATA_DIR": str(workdir / "fresh")}
    made = run_cli(["keys", "init"], env)
    assert made.returncode == 0, made.stderr
    from signer.keystore import FileKeyStore

    store = FileKeyStore.open(workdir / "fresh" / "keys.json", Path(env["SIGNER_PASSPHRASE_FILE"]).read_text().strip())
    seeds = [k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption()) for k in store._keys.values()]
    for needle in needles(seeds, [Path(env["SIGNER_PASSPHRASE_FILE"]).read_text().strip()]):
        assert needle not in (made.stdout + made.stderr).encode()

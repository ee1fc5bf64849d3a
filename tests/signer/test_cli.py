"""``python -m signer`` commands as an operator runs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pycardano import Address, Network, PaymentSigningKey, ScriptPubkey

from signer.audit import AuditLog, verify_file
from signer.keystore import skey_envelope
from signer.state import StateStore
from tests.signer.helpers import provision, run_cli


def _env_without_keys(store: str, workdir: Path, request: pytest.FixtureRequest, mode: str = "mint") -> dict[str, str]:
    """A signer environment whose key store is still empty."""
    if store == "file":
        (workdir / "unused").mkdir()
        env = provision("file", workdir / "unused", mode).env
        env["SIGNER_DATA_DIR"] = str(workdir / "data")
        return env
    hsm = request.getfixturevalue("softhsm")
    env = provision("pkcs11", workdir, mode, hsm).env
    env["SIGNER_PKCS11_KEY_PREFIX"] = hsm.new_keyspace()
    return env


def test_keys_init_then_show(store: str, workdir: Path, request: pytest.FixtureRequest) -> None:
    env = _env_without_keys(store, workdir, request)
    made = run_cli(["keys", "init"], env)
    assert made.returncode == 0, made.stderr
    shown = json.loads(made.stdout)
    assert shown["key_store"] == store and shown["verified"] and shown["sink_mode"] == "mint"
    assert shown["custodial_address"].startswith("addr_test1v") and len(shown["policy_id"]) == 56
    again = run_cli(["keys", "init"], env)
    assert again.returncode == 1 and ("already exists" in again.stderr or "already holds" in again.stderr)
    assert json.loads(run_cli(["keys", "show"], env).stdout) == shown


def test_keys_import_skey_envelopes(store: str, workdir: Path, request: pytest.FixtureRequest) -> None:
    env = _env_without_keys(store, workdir, request)
    payment, policy = PaymentSigningKey.generate(), PaymentSigningKey.generate()
    payment.save(str(workdir / "payment.skey"))
    policy.save(str(workdir / "policy.skey"))
    missing = run_cli(["keys", "import", "--payment-skey", str(workdir / "payment.skey")], env)
    assert missing.returncode == 1 and "--policy-skey" in missing.stderr
    done = run_cli(["keys", "import", "--payment-skey", str(workdir / "payment.skey"),
                    "--policy-skey", str(workdir / "policy.skey")], env)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    vkey = payment.to_verification_key()
    assert shown["custodial_address"] == str(Address(payment_part=vkey.hash(), network=Network.TESTNET))
    assert shown["payment_key_hash"] == vkey.hash().payload.hex()
    assert shown["policy_id"] == ScriptPubkey(policy.to_verification_key().hash()).hash().payload.hex()


def test_address_mode_show_without_passphrase(workdir: Path, request: pytest.FixtureRequest) -> None:
    env = _env_without_keys("file", workdir, request, mode="address")
    (workdir / "p.skey").write_text(skey_envelope(Ed25519PrivateKey.generate()))
    assert run_cli(["keys", "import", "--payment-skey", str(workdir / "p.skey")], env).returncode == 0
    env.pop("SIGNER_PASSPHRASE_FILE")
    shown = json.loads(run_cli(["keys", "show"], env).stdout)
    assert not shown["verified"] and shown["policy_key_hash"] == "" and shown["policy_script_cbor"] == ""
    assert shown["sink_address"] == "addr_test1wpfdc02rkmfyvh5kzzwwwk4kr2l9a8qa3g7feehl3ga022qez7f2d"


def test_bad_configuration_exits_2() -> None:
    result = run_cli(["keys", "show"], {"SIGNER_SINK_MODE": "teleport"})
    assert result.returncode == 2 and "SIGNER_SINK_MODE" in result.stderr
    result = run_cli(["keys", "show"], {"SIGNER_SINK_MODE": "address"})
    assert result.returncode == 2 and "SIGNER_ASSET_POLICY_ID" in result.stderr


def test_settings_lists_every_variable() -> None:
    result = run_cli(["settings"], {})
    assert result.returncode == 0
    for var in ("SIGNER_LISTEN", "SIGNER_PASSPHRASE_FILE", "SIGNER_PKCS11_PIN_FILE", "SIGNER_MAX_TOKENS_PER_DAY"):
        assert var in result.stdout


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_lost_audit_tail_blocks_start_until_acknowledged(provisioner: Callable[..., Any], workdir: Path) -> None:
    env = provisioner().env
    data = Path(env["SIGNER_DATA_DIR"])
    state = StateStore(data / "state.sqlite3")
    log = AuditLog(data / "audit.jsonl")
    for i in range(3):
        log.append({"kind": "burn", "decision": "allow", "n": i})
    log.flush()
    seq, head, _ = log.checkpoint()
    with state.transaction():
        state.set_audit_head(seq, head)
    log.close()
    state.close()
    lines = (data / "audit.jsonl").read_text().splitlines(keepends=True)
    (data / "audit.jsonl").write_text("".join(lines[:2]))  # the power cut took line 3

    assert run_cli(["audit", "verify", str(data / "audit.jsonl")], env).returncode == 1
    blocked = run_cli(["serve"], env, timeout_s=30)
    assert blocked.returncode == 1 and "acknowledge-gap" in blocked.stderr
    ack = run_cli(["audit", "acknowledge-gap"], env)
    assert ack.returncode == 0 and "lines 3..3 are lost" in ack.stdout
    result = verify_file(data / "audit.jsonl")
    assert result.ok and result.lines == 3
    assert json.loads((data / "audit.jsonl").read_text().splitlines()[2])["kind"] == "gap"
    assert run_cli(["audit", "verify", str(data / "audit.jsonl")], env).returncode == 0


def test_certs_generate(workdir: Path) -> None:
    args = ["certs", "generate", "--out", str(workdir / "c"), "--host", "signer.internal", "--host", "10.0.0.5"]
    made = run_cli(args, {})
    assert made.returncode == 0, made.stderr
    from cryptography import x509

    server = x509.load_pem_x509_certificate((workdir / "c" / "server.pem").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "signer.internal" in sans.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "10.0.0.5"}
    assert (workdir / "c" / "ca.key").stat().st_mode & 0o777 == 0o600

"""``python -m signer``: keys init|import|show, audit verify, certs generate, serve, settings."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.grpcutil import UnixSocketError
from common.logging import configure_logging
from common.settings import ConfigError, load_settings, settings_table
from signer.audit import AuditLog, audit_files, verify_chain
from signer.certs import generate_certs
from signer.errors import SignerError
from signer.healthcheck import health_check
from signer.identity import build_identity, open_key_store, pkcs11_config
from signer.keystore import KdfParams, KeyRole, Pkcs11KeyStore, load_skey, read_public_keys, write_key_file
from signer.keystore.base import ROLES
from signer.settings import SignerSettings
from signer.state import StateStore

__all__ = ["main"]


class _PublicKeys:
    """Public keys read from a key file header, for `keys show` without the passphrase."""

    kind = "file"

    def __init__(self, public: dict[KeyRole, bytes]) -> None:
        self._public = public

    def roles(self) -> tuple[KeyRole, ...]:
        return tuple(r for r in ROLES if r in self._public)

    def public_key(self, role: KeyRole) -> bytes:
        return self._public[role]

    def sign(self, role: KeyRole, message: bytes) -> bytes:
        raise SignerError("public keys only")

    def close(self) -> None:
        pass


def _roles(settings: SignerSettings) -> tuple[KeyRole, ...]:
    return ("payment", "policy") if settings.sink_mode == "mint" else ("payment",)


def _summary(settings: SignerSettings, keys: Any, verified: bool) -> dict[str, Any]:
    ident = build_identity(settings, keys)
    policy = ident.policy
    return {
        "key_store": ident.key_store, "verified": verified, "network_id": policy.network_id,
        "sink_mode": policy.sink_mode, "custodial_address": ident.custodial_address,
        "payment_key_hash": policy.payment_key_hash.hex(),
        "policy_key_hash": policy.policy_key_hash.hex() if policy.policy_key_hash else "",
        "policy_id": policy.policy_id.hex(), "policy_script_cbor": ident.policy_script_cbor.hex(),
        "asset_name": policy.asset_name.hex(), "sink_address": ident.sink_address,
    }


def _store_keys(settings: SignerSettings, keys: dict[KeyRole, Ed25519PrivateKey]) -> None:
    if settings.key_store == "pkcs11":
        Pkcs11KeyStore.import_keys(pkcs11_config(settings), keys)
        return
    if not settings.passphrase:
        raise SignerError("SIGNER_PASSPHRASE_FILE is not set")
    write_key_file(settings.key_file_path, keys, settings.passphrase, KdfParams(memory_kib=settings.kdf_memory_kib))


def cmd_keys(args: argparse.Namespace, settings: SignerSettings) -> int:
    if args.keys_command == "init":
        if settings.key_store == "pkcs11":
            Pkcs11KeyStore.generate(pkcs11_config(settings), _roles(settings))
        else:
            _store_keys(settings, {role: Ed25519PrivateKey.generate() for role in _roles(settings)})
    elif args.keys_command == "import":
        imported: dict[KeyRole, Ed25519PrivateKey] = {"payment": load_skey(args.payment_skey)}
        if args.policy_skey:
            imported["policy"] = load_skey(args.policy_skey)
        elif settings.sink_mode == "mint":
            raise SignerError("mint mode needs --policy-skey as well")
        _store_keys(settings, imported)
    if settings.key_store == "file" and not settings.passphrase:
        print(json.dumps(_summary(settings, _PublicKeys(read_public_keys(settings.key_file_path)), False), indent=2))
        return 0
    store = open_key_store(settings)
    try:
        print(json.dumps(_summary(settings, store, True), indent=2))
    finally:
        store.close()
    return 0


def _anchor(args: argparse.Namespace) -> tuple[int, str] | None:
    state_path: Path = args.state or args.file.parent / "state.sqlite3"
    if not state_path.exists():
        if args.state:
            raise SignerError(f"state database {state_path} does not exist")
        return None
    db = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    except sqlite3.Error as exc:
        raise SignerError(f"cannot read {state_path}: {exc}") from None
    finally:
        db.close()
    return None if row is None else (int(row[0]), str(row[1]))


def cmd_audit(args: argparse.Namespace) -> int:
    """Verify FILE; for the current log (audit.jsonl) the rotated files next to it come first, one chain."""
    anchor = _anchor(args)
    files = audit_files(args.file) if args.file.name == "audit.jsonl" else [args.file]
    if not files:
        raise SignerError(f"{args.file} does not exist")
    result = verify_chain(files, anchor)
    names = f" in {len(files)} files" if len(files) > 1 else ""
    if result.ok:
        anchored = f", reaches the head recorded in the state (line {anchor[0]})" if anchor else \
            " (no state database found: truncation of the last lines cannot be detected)"
        start = f" from line {result.first_seq} (older files rotated away)" if result.first_seq > 1 else ""
        print(f"ok: {result.lines} lines{names}{start}, head {result.head}{anchored}")
        return 0
    where = f" of {result.file}" if result.file and len(files) > 1 else ""
    print(f"TAMPERED: line {result.first_bad_line}{where}: {result.problem} ({result.lines} lines verify before it)")
    return 1


def cmd_acknowledge_gap(settings: SignerSettings) -> int:
    """Record, as a chained line, that the log lost lines the state database had anchored (power loss)."""
    state = StateStore(settings.data_dir / "state.sqlite3", fsync=True)
    try:
        anchor = state.audit_head()
        audit = AuditLog(settings.data_dir / "audit.jsonl")
        seq, _, _ = audit.checkpoint()
        if anchor is None or anchor[0] <= seq:
            print("no gap: the audit log reaches the head the state records")
            audit.close()
            return 0
        head = audit.append({"kind": "gap", "decision": "acknowledged", "ts": dt.datetime.now(dt.UTC).isoformat(),
                             "lost_from_seq": seq + 1, "state_seq": anchor[0], "state_hash": anchor[1]})
        audit.flush()
        audit.close()
        with state.transaction():
            state.set_audit_head(seq + 1, head)
        print(f"gap acknowledged: lines {seq + 1}..{anchor[0]} are lost; new head {head} (line {seq + 1})")
        return 0
    finally:
        state.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m signer", description="creatorpass custodial signer")
    sub = parser.add_subparsers(dest="command", required=True)
    keys = sub.add_parser("keys", help="create, import or show the signer's keys").add_subparsers(
        dest="keys_command", required=True)
    keys.add_parser("init", help="generate new keys in the configured key store")
    imp = keys.add_parser("import", help="import cardano-cli .skey envelopes")
    imp.add_argument("--payment-skey", type=Path, required=True)
    imp.add_argument("--policy-skey", type=Path)
    keys.add_parser("show", help="print addresses, key hashes and policy id (no secrets)")
    audit = sub.add_parser("audit", help="audit log tools").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="verify the hash chain; exit 1 at the first tampered line")
    verify.add_argument("file", type=Path)
    verify.add_argument("--state", type=Path, help="state database holding the anchored head "
                        "(default: state.sqlite3 next to FILE, when present)")
    audit.add_parser("acknowledge-gap", help="after a power loss cut the log's tail: record the gap and go on")
    certs = sub.add_parser("certs", help="mTLS material").add_subparsers(dest="certs_command", required=True)
    gen = certs.add_parser("generate", help="create a CA, a server and a client certificate")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--host", action="append", default=[], help="extra server name or IP (repeatable)")
    gen.add_argument("--client-cn", default="creatorpass-gateway")
    serve = sub.add_parser("serve", help="run the gRPC signer")
    serve.add_argument("--mint-ceremony", type=int, default=0, metavar="QUANTITY",
                       help="run the mint ceremony for exactly QUANTITY $CREATE, once, on its own socket "
                       "(SIGNER_MINT_CEREMONY_SOCKET next to the main one)")
    sub.add_parser("settings", help="list every SIGNER_* variable with its default")
    sub.add_parser("health-check", help="exit 0 when the running signer answers SERVING (container HEALTHCHECK)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "audit" and args.audit_command == "verify":
        try:
            return cmd_audit(args)
        except SignerError as exc:
            print(f"signer: {exc}", file=sys.stderr)
            return 2
    if args.command == "certs":
        paths = generate_certs(args.out, hosts=args.host, client_cn=args.client_cn)
        print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
        return 0
    if args.command == "settings":
        print(settings_table(SignerSettings))
        return 0
    settings = load_settings(SignerSettings)
    if args.command == "health-check":
        return health_check(settings)
    configure_logging("signer", settings.log_level, json=settings.log_json)
    try:
        if args.command == "keys":
            return cmd_keys(args, settings)
        if args.command == "audit":
            return cmd_acknowledge_gap(settings)
        import uvloop  # grpc.aio's per-call work on the event loop costs about a fifth less on uvloop

        from signer.app import run

        try:
            settings.slot_zero_time  # noqa: B018  (serving needs the network's clock)
        except ConfigError as exc:
            print(f"signer: {exc}", file=sys.stderr)
            return 2
        if args.mint_ceremony < 0:
            raise SignerError("--mint-ceremony: the quantity must be positive")
        if args.mint_ceremony and (settings.socket_path is None or settings.sink_mode != "mint"):
            raise SignerError("--mint-ceremony needs mint mode and a unix SIGNER_LISTEN")
        uvloop.run(run(settings, mint_ceremony_quantity=args.mint_ceremony))
        return 0
    except (SignerError, UnixSocketError) as exc:
        print(f"signer: {exc}", file=sys.stderr)
        return 1

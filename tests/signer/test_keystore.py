from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.errors import KeyStoreError
from signer.keystore import (
    FileKeyStore,
    Pkcs11Config,
    Pkcs11KeyStore,
    load_skey,
    read_public_keys,
    skey_envelope,
    write_key_file,
)
from signer.keystore.filestore import _public
from tests.signer.helpers import FAST_KDF, PASSPHRASE
from tests.support.softhsm import SoftHsm


def test_file_store_round_trip(tmp_path: Path) -> None:
    keys = {"payment": Ed25519PrivateKey.generate(), "policy": Ed25519PrivateKey.generate()}
    path = tmp_path / "keys.json"
    write_key_file(path, keys, PASSPHRASE, FAST_KDF)  # type: ignore[arg-type]
    assert path.stat().st_mode & 0o777 == 0o600
    store = FileKeyStore.open(path, PASSPHRASE)
    assert store.roles() == ("payment", "policy")
    for role, key in keys.items():
        assert store.public_key(role) == _public(key)  # type: ignore[arg-type]
        key.public_key().verify(store.sign(role, b"msg"), b"msg")  # type: ignore[arg-type]
    assert read_public_keys(path) == {r: _public(k) for r, k in keys.items()}
    assert "payment" in repr(store) and PASSPHRASE not in repr(store)
    with pytest.raises(KeyStoreError, match="already exists"):
        write_key_file(path, keys, PASSPHRASE, FAST_KDF)  # type: ignore[arg-type]


def test_file_store_refuses_wrong_passphrase_and_edited_header(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, {"payment": Ed25519PrivateKey.generate()}, PASSPHRASE, FAST_KDF)
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        FileKeyStore.open(path, PASSPHRASE + "!")
    document = json.loads(path.read_text())
    document["public"]["payment"] = _public(Ed25519PrivateKey.generate()).hex()  # swap the advertised key
    path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError, match="wrong passphrase, or the key file was modified"):
        FileKeyStore.open(path, PASSPHRASE)


def test_short_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="at least"):
        write_key_file(tmp_path / "k.json", {"payment": Ed25519PrivateKey.generate()}, "short", FAST_KDF)


def test_skey_envelope_import(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "payment.skey"
    path.write_text(skey_envelope(key))
    assert _public(load_skey(path)) == _public(key)
    extended = {"type": "PaymentExtendedSigningKeyShelley_ed25519_bip32", "cborHex": "5880" + "00" * 128}
    path.write_text(json.dumps(extended))
    with pytest.raises(KeyStoreError, match="not supported") as info:
        load_skey(path)
    assert "00" * 32 not in str(info.value)


def test_pycardano_skey_is_read(tmp_path: Path) -> None:
    from pycardano import PaymentSigningKey

    sk = PaymentSigningKey.generate()
    sk.save(str(tmp_path / "p.skey"))
    assert _public(load_skey(tmp_path / "p.skey")) == sk.to_verification_key().payload


@pytest.mark.hsm
def test_pkcs11_generate_and_import(softhsm: SoftHsm) -> None:
    token = softhsm.token
    generated = Pkcs11Config(softhsm.module, token.label, token.pin, softhsm.new_keyspace())
    Pkcs11KeyStore.generate(generated, ("payment", "policy"))
    with pytest.raises(KeyStoreError, match="already holds"):
        Pkcs11KeyStore.generate(generated, ("payment",))
    store = Pkcs11KeyStore.open(generated)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    for role in ("payment", "policy"):
        Ed25519PublicKey.from_public_bytes(store.public_key(role)).verify(store.sign(role, b"m"), b"m")  # type: ignore[arg-type]
    assert token.pin not in repr(store) and token.pin not in repr(generated)

    key = Ed25519PrivateKey.generate()
    imported = Pkcs11Config(softhsm.module, token.label, token.pin, softhsm.new_keyspace())
    Pkcs11KeyStore.import_keys(imported, {"payment": key})
    store2 = Pkcs11KeyStore.open(imported)
    assert store2.roles() == ("payment",)
    assert store2.public_key("payment") == _public(key)
    assert store2.sign("payment", b"x") == key.sign(b"x")  # Ed25519 is deterministic

    import pkcs11

    private = store2._keys["payment"][0]
    assert private[pkcs11.Attribute.SENSITIVE] and not private[pkcs11.Attribute.EXTRACTABLE]
    with pytest.raises(pkcs11.exceptions.PKCS11Error):
        private[pkcs11.Attribute.VALUE]


@pytest.mark.hsm
def test_pkcs11_errors_are_clear(softhsm: SoftHsm) -> None:
    token = softhsm.token
    with pytest.raises(KeyStoreError, match="no key labelled"):
        Pkcs11KeyStore.open(Pkcs11Config(softhsm.module, token.label, token.pin, "absent"))
    with pytest.raises(KeyStoreError, match="not found"):
        Pkcs11KeyStore.open(Pkcs11Config(softhsm.module, "no-such-token", token.pin))
    with pytest.raises(KeyStoreError, match="does not exist"):
        Pkcs11KeyStore.open(Pkcs11Config(Path("/nonexistent/lib.so"), token.label, token.pin))

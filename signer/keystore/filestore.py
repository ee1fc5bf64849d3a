"""Encrypted key file: Argon2id (memory-hard) derives a key from the passphrase; ChaCha20-Poly1305 seals
the private keys. The header (format, KDF and AEAD parameters, public keys) is authenticated as
associated data, so editing any of it makes unlocking fail.

File layout (JSON, mode 0600)::

    {"format": "creatorpass-signer-keys", "version": 1,
     "kdf": {"name": "argon2id", "time_cost": 3, "memory_kib": 65536, "parallelism": 1, "salt": hex16},
     "aead": {"name": "chacha20-poly1305", "nonce": hex12},
     "public": {"payment": hex32, "policy": hex32?},
     "ciphertext": hex}

The plaintext is CBOR ``{role: 32-byte seed}``. Once unlocked, keys live only as cryptography
``Ed25519PrivateKey`` objects; the store offers ``sign`` and ``public_key``, nothing that returns a seed.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import cbor2
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from signer.errors import KeyStoreError
from signer.keystore.base import ROLES, KeyRole

__all__ = ["FORMAT", "FileKeyStore", "KdfParams", "read_public_keys", "write_key_file"]

FORMAT = "creatorpass-signer-keys"
MAX_KEY_FILE_BYTES = 64 * 1024
MIN_PASSPHRASE_CHARS = 12


class KdfParams:
    """Argon2id cost. Defaults follow RFC 9106's second recommendation (64 MiB, t=3)."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 1) -> None:
        if not (1 <= time_cost <= 20 and 8 * parallelism <= memory_kib <= 4 * 1024 * 1024 and 1 <= parallelism <= 16):
            raise KeyStoreError("argon2id parameters out of range")
        self.time_cost = time_cost
        self.memory_kib = memory_kib
        self.parallelism = parallelism


def _derive(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    return hash_secret_raw(passphrase.encode("utf-8"), salt, time_cost=params.time_cost,
                           memory_cost=params.memory_kib, parallelism=params.parallelism,
                           hash_len=32, type=Type.ID)


def _associated_data(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def write_key_file(path: Path, keys: dict[KeyRole, Ed25519PrivateKey], passphrase: str,
                   params: KdfParams | None = None, *, overwrite: bool = False) -> None:
    """Seal ``keys`` under ``passphrase`` into ``path`` (created 0600; refuses to overwrite by default)."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise KeyStoreError(f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")
    if "payment" not in keys:
        raise KeyStoreError("a key file needs at least the payment key")
    params = params or KdfParams()
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header: dict[str, Any] = {
        "format": FORMAT, "version": 1,
        "kdf": {"name": "argon2id", "time_cost": params.time_cost, "memory_kib": params.memory_kib,
                "parallelism": params.parallelism, "salt": salt.hex()},
        "aead": {"name": "chacha20-poly1305", "nonce": nonce.hex()},
        "public": {role: _public(key).hex() for role, key in keys.items()},
    }
    plaintext = cbor2.dumps({role: _seed(key) for role, key in keys.items()})
    sealed = ChaCha20Poly1305(_derive(passphrase, salt, params)).encrypt(nonce, plaintext, _associated_data(header))
    document = json.dumps({**header, "ciphertext": sealed.hex()}, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"{path} already exists; refusing to overwrite a key file") from None
    with os.fdopen(fd, "w") as out:
        out.write(document)
        out.flush()
        os.fsync(out.fileno())


def _read_document(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"cannot read key file {path}: {exc.strerror}") from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KeyStoreError(f"{path} is too large to be a key file")
    try:
        document = json.loads(raw)
    except ValueError:
        raise KeyStoreError(f"{path} is not a signer key file (not JSON)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("version") != 1:
        raise KeyStoreError(f"{path} is not a version-1 signer key file")
    return document


def read_public_keys(path: Path) -> dict[KeyRole, bytes]:
    """The public keys recorded in a key file's header (no passphrase needed; authenticated on unlock)."""
    public = _read_document(path).get("public", {})
    return {role: bytes.fromhex(public[role]) for role in ROLES if role in public}


class FileKeyStore:
    """Keys unlocked from an encrypted key file."""

    kind = "file"

    def __init__(self, keys: dict[KeyRole, Ed25519PrivateKey]) -> None:
        self._keys = dict(keys)
        self._public = {role: _public(key) for role, key in keys.items()}

    def __repr__(self) -> str:
        return f"FileKeyStore(roles={list(self._keys)})"

    @classmethod
    def open(cls, path: Path, passphrase: str) -> FileKeyStore:
        document = _read_document(path)
        try:
            header = {k: document[k] for k in ("format", "version", "kdf", "aead", "public")}
            kdf, aead = header["kdf"], header["aead"]
            if kdf["name"] != "argon2id" or aead["name"] != "chacha20-poly1305":
                raise KeyStoreError(f"{path}: unsupported KDF or cipher")
            params = KdfParams(int(kdf["time_cost"]), int(kdf["memory_kib"]), int(kdf["parallelism"]))
            salt, nonce = bytes.fromhex(kdf["salt"]), bytes.fromhex(aead["nonce"])
            sealed = bytes.fromhex(document["ciphertext"])
        except (KeyError, TypeError, ValueError):
            raise KeyStoreError(f"{path}: key file header is damaged") from None
        try:
            plaintext = ChaCha20Poly1305(_derive(passphrase, salt, params)).decrypt(
                nonce, sealed, _associated_data(header))
        except InvalidTag:
            raise KeyStoreError(f"{path}: wrong passphrase, or the key file was modified") from None
        seeds = cbor2.loads(plaintext)
        keys: dict[KeyRole, Ed25519PrivateKey] = {}
        for role in ROLES:
            if role in seeds:
                keys[role] = Ed25519PrivateKey.from_private_bytes(seeds[role])
                if _public(keys[role]).hex() != header["public"].get(role):
                    raise KeyStoreError(f"{path}: {role} public key does not match its private key")
        del seeds, plaintext
        return cls(keys)

    def roles(self) -> tuple[KeyRole, ...]:
        return tuple(role for role in ROLES if role in self._keys)

    def public_key(self, role: KeyRole) -> bytes:
        try:
            return self._public[role]
        except KeyError:
            raise KeyStoreError(f"the key store holds no {role} key") from None

    def sign(self, role: KeyRole, message: bytes) -> bytes:
        try:
            key = self._keys[role]
        except KeyError:
            raise KeyStoreError(f"the key store holds no {role} key") from None
        return key.sign(message)

    def close(self) -> None:
        self._keys.clear()

"""PKCS#11 key store: Ed25519 keys (CKK_EC_EDWARDS) live inside the token and sign with CKM_EDDSA.

Keys are found by label ``<prefix>-payment`` / ``<prefix>-policy``. ``generate`` creates them inside the
token; ``import_keys`` loads an existing seed as a sensitive, non-extractable private object (the seed
passes through this process once, at import). Tested with SoftHSM2; any token that implements
CKM_EDDSA over Ed25519 should work. One session, serialised by a lock (tokens differ in how they handle
concurrent use of a session; signing takes well under a millisecond).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.errors import KeyStoreError
from signer.keystore.base import ROLES, KeyRole

__all__ = ["DEFAULT_MODULE", "Pkcs11Config", "Pkcs11KeyStore"]

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
_ED25519_OID = "1.3.101.112"


@dataclass(frozen=True)
class Pkcs11Config:
    module: Path
    token_label: str
    pin: str
    key_label_prefix: str = "creatorpass"

    def __repr__(self) -> str:  # the PIN never appears in a repr
        return f"Pkcs11Config(module={str(self.module)!r}, token_label={self.token_label!r})"

    def label(self, role: KeyRole) -> str:
        return f"{self.key_label_prefix}-{role}"


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise KeyStoreError("python-pkcs11 is not installed (pip install 'creatorpass[signer]')") from None
    return pkcs11


def _open_session(config: Pkcs11Config, rw: bool) -> Any:
    pkcs11 = _pkcs11()
    if not config.module.exists():
        raise KeyStoreError(f"PKCS#11 module {config.module} does not exist")
    try:
        lib = pkcs11.lib(str(config.module))
        token = lib.get_token(token_label=config.token_label)
        try:
            return token.open(user_pin=config.pin, rw=rw)
        except pkcs11.exceptions.UserAlreadyLoggedIn:
            # PKCS#11 login is per process and token: another session of ours already logged in.
            return token.open(rw=rw)
    except pkcs11.exceptions.NoSuchToken:
        raise KeyStoreError(f"PKCS#11 token {config.token_label!r} not found") from None
    except pkcs11.exceptions.PinIncorrect:
        raise KeyStoreError(f"wrong PIN for PKCS#11 token {config.token_label!r}") from None
    except pkcs11.exceptions.PKCS11Error as exc:
        raise KeyStoreError(f"cannot open PKCS#11 token {config.token_label!r}: {type(exc).__name__}") from None


def _ec_params() -> bytes:
    from pkcs11.util.ec import encode_named_curve_parameters

    return bytes(encode_named_curve_parameters(_ED25519_OID))


def _point_to_raw(point: bytes) -> bytes:
    # CKA_EC_POINT is a DER OCTET STRING (04 20 || key) in most tokens, the raw 32 bytes in a few.
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == 32:
        return point
    raise KeyStoreError("token returned an EC point that is not an Ed25519 public key")


class Pkcs11KeyStore:
    """Signs inside a PKCS#11 token."""

    kind = "pkcs11"

    def __init__(self, config: Pkcs11Config, session: Any, keys: dict[KeyRole, tuple[Any, bytes]]) -> None:
        self._config = config
        self._session = session
        self._keys = keys
        self._lock = threading.Lock()
        self._mechanism = _pkcs11().Mechanism.EDDSA

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore(token={self._config.token_label!r}, roles={list(self._keys)})"

    @classmethod
    def open(cls, config: Pkcs11Config) -> Pkcs11KeyStore:
        pkcs11 = _pkcs11()
        session = _open_session(config, rw=False)
        keys: dict[KeyRole, tuple[Any, bytes]] = {}
        try:
            for role in ROLES:
                label = config.label(role)
                try:
                    private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=label)
                    public = session.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, label=label)
                except pkcs11.exceptions.NoSuchKey:
                    continue
                if private.key_type != pkcs11.KeyType.EC_EDWARDS:
                    raise KeyStoreError(f"token key {label!r} is not an Ed25519 (EC_EDWARDS) key")
                keys[role] = (private, _point_to_raw(bytes(public[pkcs11.Attribute.EC_POINT])))
        except pkcs11.exceptions.PKCS11Error as exc:
            session.close()
            raise KeyStoreError(f"cannot read keys from token: {type(exc).__name__}") from None
        if "payment" not in keys:
            session.close()
            raise KeyStoreError(f"token {config.token_label!r} has no key labelled {config.label('payment')!r}")
        return cls(config, session, keys)

    def roles(self) -> tuple[KeyRole, ...]:
        return tuple(role for role in ROLES if role in self._keys)

    def public_key(self, role: KeyRole) -> bytes:
        try:
            return self._keys[role][1]
        except KeyError:
            raise KeyStoreError(f"the token holds no {role} key") from None

    def sign(self, role: KeyRole, message: bytes) -> bytes:
        try:
            private = self._keys[role][0]
        except KeyError:
            raise KeyStoreError(f"the token holds no {role} key") from None
        with self._lock:
            try:
                return bytes(private.sign(message, mechanism=self._mechanism))
            except _pkcs11().exceptions.PKCS11Error as exc:
                raise KeyStoreError(f"token refused to sign: {type(exc).__name__}") from None

    def close(self) -> None:
        with self._lock:
            self._keys.clear()
            self._session.close()

    # --- provisioning (CLI: keys init / keys import) -------------------------------------------------

    @staticmethod
    def _refuse_existing(session: Any, config: Pkcs11Config, roles: tuple[KeyRole, ...]) -> None:
        pkcs11 = _pkcs11()
        for role in roles:
            if list(session.get_objects({pkcs11.Attribute.LABEL: config.label(role)})):
                raise KeyStoreError(f"token already holds an object labelled {config.label(role)!r}")

    @classmethod
    def generate(cls, config: Pkcs11Config, roles: tuple[KeyRole, ...]) -> None:
        """Generate Ed25519 key pairs inside the token (the private halves never exist outside it)."""
        pkcs11 = _pkcs11()
        attr, mech = pkcs11.Attribute, pkcs11.Mechanism
        with _open_session(config, rw=True) as session:
            cls._refuse_existing(session, config, roles)
            params = session.create_domain_parameters(
                pkcs11.KeyType.EC_EDWARDS, {attr.EC_PARAMS: _ec_params()}, local=True)
            for role in roles:
                label = config.label(role)
                params.generate_keypair(
                    store=True, label=label, id=label.encode(), mechanism=mech.EC_EDWARDS_KEY_PAIR_GEN,
                    private_template={attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.SIGN: True},
                    public_template={attr.VERIFY: True})

    @classmethod
    def import_keys(cls, config: Pkcs11Config, keys: dict[KeyRole, Ed25519PrivateKey]) -> None:
        """Import existing keys as sensitive, non-extractable token objects."""
        pkcs11 = _pkcs11()
        attr = pkcs11.Attribute
        with _open_session(config, rw=True) as session:
            cls._refuse_existing(session, config, tuple(keys))
            for role, key in keys.items():
                label = config.label(role)
                public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                common = {attr.KEY_TYPE: pkcs11.KeyType.EC_EDWARDS, attr.TOKEN: True, attr.LABEL: label,
                          attr.ID: label.encode(), attr.EC_PARAMS: _ec_params()}
                session.create_object({
                    **common, attr.CLASS: pkcs11.ObjectClass.PRIVATE_KEY, attr.PRIVATE: True,
                    attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.SIGN: True,
                    attr.VALUE: key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                  serialization.NoEncryption())})
                session.create_object({**common, attr.CLASS: pkcs11.ObjectClass.PUBLIC_KEY,
                                       attr.VERIFY: True, attr.EC_POINT: b"\x04\x20" + public})

"""Key stores: an encrypted key file and PKCS#11 tokens. Both expose only public keys and ``sign``."""

from signer.keystore.base import ROLES, KeyRole, KeyStore
from signer.keystore.filestore import FileKeyStore, KdfParams, read_public_keys, write_key_file
from signer.keystore.pkcs11store import Pkcs11Config, Pkcs11KeyStore
from signer.keystore.skey import load_skey, skey_envelope

__all__ = [
    "ROLES",
    "FileKeyStore",
    "KdfParams",
    "KeyRole",
    "KeyStore",
    "Pkcs11Config",
    "Pkcs11KeyStore",
    "load_skey",
    "read_public_keys",
    "skey_envelope",
    "write_key_file",
]

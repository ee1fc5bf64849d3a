"""``python -m signer certs generate --out DIR``: a private CA plus server and client certificates for mTLS.

Writes ``ca.pem``, ``ca.key`` (keep offline), ``server.pem``/``server.key`` (SAN: localhost, 127.0.0.1 and
any ``--host``) and ``client.pem``/``client.key`` (CN ``creatorpass-gateway`` by default). ECDSA P-256,
SHA-256; private keys are written 0600. Use them as ``TlsFiles(cert, key, ca)`` on both sides.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ClientIdentity", "check_allow_list", "client_identity", "generate_certs"]

_ALLOW_KINDS = ("cn", "san", "sha256")

_Key = ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "creatorpass"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class ClientIdentity:
    """What an mTLS client's certificate says about it, for the allow-list and the audit line."""

    subject: str  # RFC 4514, e.g. "CN=creatorpass-gateway,O=creatorpass"
    common_name: str
    sans: tuple[str, ...]  # DNS names, IP addresses and URIs
    sha256: str  # fingerprint of the DER certificate, lowercase hex

    def allowed_by(self, allow_list: Sequence[str]) -> bool:
        """True when an entry ``cn:NAME``, ``san:NAME`` or ``sha256:HEX`` names this certificate."""
        for entry in allow_list:
            kind, _, value = entry.partition(":")
            if ((kind == "cn" and value == self.common_name) or (kind == "san" and value in self.sans)
                    or (kind == "sha256" and value.lower().replace(":", "") == self.sha256)):
                return True
        return False


def check_allow_list(entries: Sequence[str]) -> str | None:
    """The first malformed allow-list entry, or None."""
    for entry in entries:
        kind, sep, value = entry.partition(":")
        if kind not in _ALLOW_KINDS or not sep or not value:
            return entry
        if kind == "sha256" and len(value.replace(":", "")) != 64:
            return entry
    return None


@lru_cache(maxsize=64)
def client_identity(pem: bytes) -> ClientIdentity:
    """Parse a client certificate (PEM, as gRPC's auth context gives it); cached: one client, one parse."""
    cert = x509.load_pem_x509_certificate(pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple(str(n.value) for n in ext)
    except x509.ExtensionNotFound:
        sans = ()
    return ClientIdentity(subject=cert.subject.rfc4514_string(), common_name=str(names[0].value) if names else "",
                          sans=sans, sha256=cert.fingerprint(hashes.SHA256()).hex())


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key_pem(key: _Key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _builder(subject: str, issuer: x509.Name, key: _Key, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days)))


def _sans(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in ["localhost", "127.0.0.1", *hosts]:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return list(dict.fromkeys(names))


def generate_certs(out: Path, *, hosts: Sequence[str] = (), client_cn: str = "creatorpass-gateway",
                   days: int = 825) -> dict[str, Path]:
    """Create the CA, server and client material in ``out``; return the written paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("creatorpass signer CA")
    ca = (_builder("creatorpass signer CA", ca_name, ca_key, days)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    paths = {"ca": out / "ca.pem", "ca_key": out / "ca.key"}
    _write(paths["ca"], ca.public_bytes(serialization.Encoding.PEM), False)
    _write(paths["ca_key"], _key_pem(ca_key), True)
    for role, cn, usage in (("server", "creatorpass-signer", ExtendedKeyUsageOID.SERVER_AUTH),
                            ("client", client_cn, ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (_builder(cn, ca_name, key, days)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if role == "server":
            builder = builder.add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        paths[role], paths[f"{role}_key"] = out / f"{role}.pem", out / f"{role}.key"
        _write(paths[role], cert.public_bytes(serialization.Encoding.PEM), False)
        _write(paths[f"{role}_key"], _key_pem(key), True)
    return paths

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
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["generate_certs"]

_Key = ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "creatorpass"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


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

"""The signer's error tree: one root, and a Refusal that carries a machine-readable reason."""

from __future__ import annotations

__all__ = [
    "AuditError",
    "KeyStoreError",
    "MalformedRequest",
    "Refusal",
    "SignerError",
    "StateError",
]


class SignerError(Exception):
    """Root of every error the signer raises on purpose."""


class MalformedRequest(SignerError):
    """The request itself is unusable (missing fields, bad ids): gRPC INVALID_ARGUMENT."""


class Refusal(SignerError):
    """The policy refuses to sign. ``reason`` is a RefusalReason enum name from signer.proto.

    ``detail`` is a readable sentence for the operator; it never contains key material.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class KeyStoreError(SignerError):
    """A key store cannot be opened, unlocked or used. Messages never contain key bytes."""


class StateError(SignerError):
    """The persistent counters (SQLite) failed; the signer stops signing."""


class AuditError(SignerError):
    """The audit log cannot be written or its chain is broken."""

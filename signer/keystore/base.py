"""What every key store offers: public keys and signatures, never the private key itself."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

__all__ = ["ROLES", "KeyRole", "KeyStore"]

KeyRole = Literal["payment", "policy"]
ROLES: tuple[KeyRole, ...] = ("payment", "policy")


@runtime_checkable
class KeyStore(Protocol):
    """Holds Ed25519 keys by role. ``payment`` controls the custodial address; ``policy`` (``mint`` mode
    only) controls the $CREATE minting policy. Implementations keep private keys inside the store."""

    kind: str

    def roles(self) -> tuple[KeyRole, ...]:
        """The roles this store holds keys for."""
        ...

    def public_key(self, role: KeyRole) -> bytes:
        """The 32-byte Ed25519 public key of ``role``."""
        ...

    def sign(self, role: KeyRole, message: bytes) -> bytes:
        """A 64-byte Ed25519 signature of ``message`` by ``role``'s key."""
        ...

    def close(self) -> None:
        ...

"""Native (timelock) scripts: decoding, hashing, evaluation and the Ogmios JSON form; script references."""

from __future__ import annotations

import hashlib
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

import cbor2

__all__ = [
    "NativeScript", "NativeScriptError", "ScriptRef", "native_script_hash", "parse_script_ref", "script_ref_size",
]

_MAX_DEPTH = 64
_LANGUAGES = {0: "native", 1: "plutus:v1", 2: "plutus:v2", 3: "plutus:v3"}


class NativeScriptError(ValueError):
    """A malformed native script."""


def native_script_hash(raw: bytes) -> str:
    return hashlib.blake2b(b"\x00" + raw, digest_size=28).hexdigest()


@dataclass(slots=True)
class NativeScript:
    kind: str  # signature | all | any | some | after | before
    key_hash: str | None = None
    scripts: list[NativeScript] = field(default_factory=list)
    at_least: int = 0
    slot: int | None = None
    raw: bytes = b""  # original CBOR (top-level scripts); hashes are taken over it

    @property
    def hash(self) -> str:
        return native_script_hash(self.raw or cbor2.dumps(self.to_cbor()))

    @classmethod
    def from_raw(cls, raw: bytes) -> NativeScript:
        script = cls.from_cbor(cbor2.loads(raw))
        script.raw = raw
        return script

    @classmethod
    def from_decoded(cls, obj: Any, raw: bytes) -> NativeScript:
        script = cls.from_cbor(obj)
        script.raw = raw
        return script

    @classmethod
    def from_cbor(cls, obj: Any, depth: int = 0) -> NativeScript:
        if depth > _MAX_DEPTH:
            raise NativeScriptError("native script nested too deeply")
        if not isinstance(obj, (list, tuple)) or not obj or not isinstance(obj[0], int):
            raise NativeScriptError("a native script must be an array starting with its type")
        tag = obj[0]
        if tag == 0 and len(obj) == 2 and isinstance(obj[1], bytes) and len(obj[1]) == 28:
            return cls("signature", key_hash=obj[1].hex())
        if tag in (1, 2) and len(obj) == 2 and isinstance(obj[1], (list, tuple)):
            kind = "all" if tag == 1 else "any"
            return cls(kind, scripts=[cls.from_cbor(item, depth + 1) for item in obj[1]])
        if tag == 3 and len(obj) == 3 and isinstance(obj[1], int) and isinstance(obj[2], (list, tuple)):
            return cls("some", at_least=obj[1], scripts=[cls.from_cbor(item, depth + 1) for item in obj[2]])
        if tag in (4, 5) and len(obj) == 2 and isinstance(obj[1], int) and obj[1] >= 0:
            return cls("after" if tag == 4 else "before", slot=obj[1])
        raise NativeScriptError(f"unknown or malformed native script clause {tag!r}")

    def to_cbor(self) -> list[Any]:
        if self.kind == "signature":
            return [0, bytes.fromhex(self.key_hash or "")]
        if self.kind in ("all", "any"):
            return [1 if self.kind == "all" else 2, [s.to_cbor() for s in self.scripts]]
        if self.kind == "some":
            return [3, self.at_least, [s.to_cbor() for s in self.scripts]]
        return [4 if self.kind == "after" else 5, self.slot]

    def evaluate(self, signers: Set[str], validity_start: int | None, ttl: int | None) -> bool:
        """Phase-1 evaluation (Allegra timelock semantics) against the tx's key hashes and interval."""
        if self.kind == "signature":
            return self.key_hash in signers
        if self.kind == "all":
            return all(s.evaluate(signers, validity_start, ttl) for s in self.scripts)
        if self.kind == "any":
            return any(s.evaluate(signers, validity_start, ttl) for s in self.scripts)
        if self.kind == "some":
            passed = sum(1 for s in self.scripts if s.evaluate(signers, validity_start, ttl))
            return passed >= self.at_least
        assert self.slot is not None
        if self.kind == "after":  # RequireTimeStart: the tx may only be valid from `slot` on
            return validity_start is not None and self.slot <= validity_start
        return ttl is not None and ttl <= self.slot  # RequireTimeExpire

    def to_ogmios(self) -> dict[str, Any]:
        """Ogmios ``Script<Native>`` JSON."""
        if self.kind == "signature":
            return {"clause": "signature", "from": self.key_hash}
        if self.kind in ("all", "any"):
            return {"clause": self.kind, "from": [s.to_ogmios() for s in self.scripts]}
        if self.kind == "some":
            return {"clause": "some", "atLeast": self.at_least, "from": [s.to_ogmios() for s in self.scripts]}
        return {"clause": self.kind, "slot": self.slot}


@dataclass(frozen=True, slots=True)
class ScriptRef:
    """A script carried by an output (``script_ref``): language, its bytes as Kupo shows them, hash."""

    language: str  # native | plutus:v1 | plutus:v2 | plutus:v3
    script: bytes  # native: the native script CBOR; plutus: the flat-encoded script bytes (CBOR bytes)
    hash: str  # blake2b-224 over language tag || script
    native: NativeScript | None

    def to_ogmios(self) -> dict[str, Any]:
        if self.native is not None:
            return {"language": "native", "json": self.native.to_ogmios(), "cbor": self.script.hex()}
        return {"language": self.language, "cbor": self.script.hex()}


def _script_ref_parts(script_ref: bytes) -> tuple[Any, bytes]:
    """(decoded ``[language, script]``, the script's original bytes)."""
    from devnet.ledger.cborscan import CborScanError, array_items

    obj = cbor2.loads(script_ref)
    if not isinstance(obj, (list, tuple)) or len(obj) != 2 or obj[0] not in _LANGUAGES:
        raise NativeScriptError("malformed script reference")
    try:
        return obj, array_items(script_ref)[0][1]
    except CborScanError as exc:
        raise NativeScriptError(f"malformed script reference: {exc}") from None


def script_ref_size(script_ref: bytes) -> int:
    """The script's size as Conway's reference-script fee counts it (``originalBytesSize``): the native
    script's CBOR, or a Plutus script's bytes (the contents of its byte string)."""
    obj, raw = _script_ref_parts(script_ref)
    if obj[0] == 0:
        return len(raw)
    if not isinstance(obj[1], bytes):
        raise NativeScriptError("a Plutus script reference must hold bytes")
    return len(obj[1])


def parse_script_ref(script_ref: bytes) -> ScriptRef:
    """Parse the inner CBOR of an output's ``script_ref`` (``[language, script]``)."""
    obj, raw = _script_ref_parts(script_ref)
    tag = obj[0]
    if tag == 0:
        native = NativeScript.from_cbor(obj[1])
        native.raw = raw
        return ScriptRef("native", raw, native_script_hash(raw), native)
    if not isinstance(obj[1], bytes):
        raise NativeScriptError("a Plutus script reference must hold bytes")
    digest = hashlib.blake2b(bytes([tag]) + obj[1], digest_size=28).hexdigest()
    return ScriptRef(_LANGUAGES[tag], obj[1], digest, None)

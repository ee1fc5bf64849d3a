"""Validators for the reference schemas (Ogmios v6.14 JSON Schema, Kupo v2.12 OpenAPI), loaded once.

Three documented deviations from the files, both applied in memory only:
- ``cardano.json#/definitions/Value.propertyNames`` rejects the mandatory ``"ada"`` key (upstream quirk);
  it is patched to ``^(ada|[0-9a-f]{56})$`` (see PROTOCOL-NOTES §2).
- ``cardano.json#/definitions/Genesis<Byron>`` requires ``protocolParameters`` yet only allows
  ``updatableParameters`` (typed as the Shelley ``ProtocolParameters``); it is patched to require
  ``updatableParameters`` typed as ``BootstrapProtocolParameters``, which is what Byron has.
- ``ogmios.json#/properties/RpcError`` requires an ``error.string`` member (an upstream typo for
  ``message``); generic JSON-RPC errors are checked against a corrected copy.
Kupo's OpenAPI component schemas are converted to JSON Schema (``nullable`` → type union,
``#/components/schemas`` refs resolved in the same document, OpenAPI-only keywords dropped,
``contentEncoding`` asserted as a pattern so that ``oneOf`` branches such as bech32/base16 differ); the
``Metadata.schema`` label keys are checked as digit strings (the OpenAPI says ``type: integer`` for
JSON object keys, which no JSON document can satisfy).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
if not REFERENCE.exists():  # repository checked out elsewhere: fall back to the sibling layout
    REFERENCE = Path("/work/shared/reference")

__all__ = ["REFERENCE", "kupo_validator", "ogmios_validator", "validate_kupo", "validate_ogmios"]


@functools.cache
def _ogmios_registry() -> tuple[Registry, dict[str, Any]]:
    ogmios = json.loads((REFERENCE / "ogmios" / "ogmios.json").read_text())
    cardano = json.loads((REFERENCE / "ogmios" / "cardano.json").read_text())
    cardano["definitions"]["Value"]["propertyNames"] = {"pattern": "^(ada|[0-9a-f]{56})$"}
    byron = cardano["definitions"]["Genesis<Byron>"]
    byron["required"] = [k if k != "protocolParameters" else "updatableParameters" for k in byron["required"]]
    byron["properties"]["updatableParameters"] = {"$ref": "cardano.json#/definitions/BootstrapProtocolParameters"}
    rpc_error = copy.deepcopy(ogmios["properties"]["RpcError"])
    rpc_error["properties"]["error"]["required"] = ["code", "message"]
    rpc_error["properties"]["method"] = {"type": "string"}
    ogmios["properties"]["RpcErrorFixed"] = rpc_error
    registry = Registry().with_resources(
        [
            ("ogmios.json", Resource(contents=ogmios, specification=DRAFT7)),
            ("cardano.json", Resource(contents=cardano, specification=DRAFT7)),
        ]
    )
    return registry, ogmios


@functools.cache
def ogmios_validator(definition: str) -> jsonschema.Draft7Validator:
    """Validator for ``ogmios.json#/properties/<definition>`` (e.g. ``NextBlockResponse``)."""
    registry, _ = _ogmios_registry()
    schema = {"$ref": f"ogmios.json#/properties/{definition}"}
    return jsonschema.Draft7Validator(schema, registry=registry)


@functools.cache
def cardano_validator(definition: str) -> jsonschema.Draft7Validator:
    registry, _ = _ogmios_registry()
    return jsonschema.Draft7Validator({"$ref": f"cardano.json#/definitions/{definition}"}, registry=registry)


def validate_ogmios(definition: str, message: Any) -> None:
    errors = sorted(ogmios_validator(definition).iter_errors(message), key=lambda e: e.path)
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise AssertionError(f"{definition}: {best.message} at {list(best.absolute_path)}\n{message!r:.2000}")


_ENCODING_PATTERNS = {
    "base16": "^[0-9a-f]*$",
    "bech32": "^[a-z_]+1[02-9ac-hj-np-z]+$",
    "base58": "^[1-9A-HJ-NP-Za-km-z]+$",
}


def _openapi_to_jsonschema(node: Any) -> Any:
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("example", "examples", "x-additionalPropertiesName", "nullable"):
            continue
        if key == "contentEncoding":  # an annotation in JSON Schema: assert it, so oneOf branches differ
            if value in _ENCODING_PATTERNS and "pattern" not in node:
                out["pattern"] = _ENCODING_PATTERNS[value]
            continue
        if key == "$ref" and value.startswith("#/components/schemas/"):
            out[key] = "#/definitions/" + value.rsplit("/", 1)[1]
            continue
        out[key] = _openapi_to_jsonschema(value)
    if node.get("nullable"):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    if out.get("title") is None:
        out.pop("title", None)
    return out


@functools.cache
def _kupo_document() -> dict[str, Any]:
    spec = yaml.safe_load((REFERENCE / "kupo" / "openapi-v2.12.0.yaml").read_text())
    definitions = _openapi_to_jsonschema(spec["components"]["schemas"])
    # JSON object keys are strings: "propertyNames: {type: integer}" can never hold; check the digits instead.
    definitions["Metadata"]["properties"]["schema"]["propertyNames"] = {"pattern": "^-?[0-9]+$"}
    return {"definitions": definitions}


@functools.cache
def kupo_validator(schema_name: str, array: bool = False) -> jsonschema.Draft7Validator:
    """Validator for a Kupo component schema (or an array of it)."""
    document = dict(_kupo_document())
    item = {"$ref": f"#/definitions/{schema_name}"}
    document.update({"type": "array", "items": item} if array else item)
    return jsonschema.Draft7Validator(document)


def validate_kupo(schema_name: str, body: Any, array: bool = False) -> None:
    errors = list(kupo_validator(schema_name, array).iter_errors(body))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise AssertionError(f"Kupo {schema_name}: {best.message} at {list(best.absolute_path)}\n{body!r:.2000}")

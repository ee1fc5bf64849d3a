"""``submitTransaction`` and ``evaluateTransaction``: parameter checks, CBOR pre-checks, ledger verdicts.

The ledger rules (and which single failure wins) live in ``devnet.ledger``; ``chain.submit`` raises a
``LedgerRejection`` already in Ogmios' shape, mapped here onto the JSON-RPC error. Bytes that are not a
transaction in any era get -32602 with one decoder message per era, as Ogmios does.
"""

from __future__ import annotations

from typing import Any, Final

from devnet.ogmios import cborraw
from devnet.ogmios.encoding import address_bytes_from_text, is_hex
from devnet.ogmios.rpc import INVALID_PARAMS, RpcFault

__all__ = ["deserialisation_failure", "evaluate_transaction", "submit_transaction"]

_ERAS: Final = ("shelley", "allegra", "mary", "alonzo", "babbage", "conway")
_MAX_TX_HEX: Final = 2 * 1024 * 1024  # 1 MiB of CBOR; the ledger's own limit (16 KiB) answers below that
_MAX_ADDITIONAL_UTXO: Final = 10_000
_DESERIALISATION_MESSAGE: Final = (
    "Invalid transaction; It looks like the given transaction wasn't well-formed. Note that I try to decode "
    "the transaction in every possible era and it was malformed in ALL eras. Yet, I can't pinpoint the "
    "exact issue for I do not know in which era / format you intended the transaction to be. The 'data' "
    "field, therefore, contains errors for each era."
)


def deserialisation_failure(reason: str) -> RpcFault:
    """-32602 with ``data`` = one decoder message per era (the same reason: the devnet has one decoder)."""
    per_era = {era: f"DeserialiseFailure: {reason}" for era in _ERAS}
    return RpcFault(INVALID_PARAMS, _DESERIALISATION_MESSAGE, per_era)


def _precheck(tx: bytes) -> None:
    """Reject bytes that cannot be a transaction before handing them to the ledger decoder."""
    try:
        end = cborraw.item_end(tx, 0)
        if end != len(tx):
            raise cborraw.CborError(f"{len(tx) - end} trailing byte(s) after the transaction")
        items = cborraw.array_items(tx, 0)
    except cborraw.CborError as exc:
        raise deserialisation_failure(str(exc)) from None
    if len(items) not in (3, 4):
        raise deserialisation_failure(f"expected a transaction array of 3 or 4 items, got {len(items)}")
    body_start = items[0][0]
    if tx[body_start] >> 5 != 5:
        raise deserialisation_failure("expected the transaction body to be a map")


def _transaction_bytes(params: Any, allowed: set[str]) -> bytes:
    if not isinstance(params, dict) or "transaction" not in params or set(params) - allowed:
        raise RpcFault(INVALID_PARAMS, "Invalid request: expected 'params.transaction.cbor'.")
    transaction = params["transaction"]
    if not isinstance(transaction, dict) or set(transaction) != {"cbor"} or not isinstance(transaction["cbor"], str):
        raise RpcFault(INVALID_PARAMS, "Invalid request: expected 'params.transaction.cbor', a base16 string.")
    text = transaction["cbor"]
    if len(text) > _MAX_TX_HEX:
        raise deserialisation_failure(f"the transaction is too large ({len(text) // 2} bytes)")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise deserialisation_failure("the transaction is not valid base16") from None
    if not raw:
        raise deserialisation_failure("end of input")
    _precheck(raw)
    return raw


def _ledger_call(call: Any, raw: bytes) -> Any:
    from devnet.ledger.types import LedgerRejection

    try:
        return call(raw)
    except LedgerRejection as rejection:
        data = rejection.data
        if rejection.code == INVALID_PARAMS and not isinstance(data, dict):
            raise deserialisation_failure(rejection.message) from None
        raise RpcFault(rejection.code, rejection.message, *([] if data is None else [data])) from None
    except (ValueError, KeyError, IndexError, TypeError) as exc:  # the ledger decoder refused the bytes
        raise deserialisation_failure(str(exc) or type(exc).__name__) from None


def submit_transaction(chain: Any, params: Any) -> dict[str, Any]:
    raw = _transaction_bytes(params, {"transaction"})
    tx = _ledger_call(chain.submit, raw)
    return {"transaction": {"id": tx.id}}


def evaluate_transaction(chain: Any, params: Any) -> list[Any]:
    raw = _transaction_bytes(params, {"transaction", "additionalUtxo"})
    refs = _parse_additional_utxo(params.get("additionalUtxo", []))
    evaluation: list[Any] = _ledger_call(lambda tx: chain.evaluate(tx, refs), raw)
    return evaluation


def _parse_additional_utxo(entries: Any) -> list[Any]:
    from devnet.ledger.types import OutRef

    if not isinstance(entries, list) or len(entries) > _MAX_ADDITIONAL_UTXO:
        raise RpcFault(INVALID_PARAMS, "Invalid request: 'additionalUtxo' must be a list of UTxO entries.")
    refs = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise RpcFault(INVALID_PARAMS, "Invalid request: a UTxO entry must be an object.")
        try:
            tx_id, index = entry["transaction"]["id"], entry["index"]
            address, value = entry["address"], entry["value"]
        except (KeyError, TypeError):
            raise RpcFault(
                INVALID_PARAMS,
                "Invalid request: a UTxO entry needs 'transaction.id', 'index', 'address' and 'value'.",
            ) from None
        if not is_hex(tx_id, 64) or not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise RpcFault(INVALID_PARAMS, "Invalid request: invalid output reference in 'additionalUtxo'.")
        if not isinstance(address, str) or address_bytes_from_text(address) is None:
            raise RpcFault(INVALID_PARAMS, f"Invalid request: invalid address {str(address)[:120]!r}.")
        _check_value(value)
        for key in ("datumHash", "datum"):
            if entry.get(key) is not None and not is_hex(entry[key], 64 if key == "datumHash" else None):
                raise RpcFault(INVALID_PARAMS, f"Invalid request: invalid '{key}' in 'additionalUtxo'.")
        if entry.get("script") is not None:
            _check_script(entry["script"])
        refs.append(OutRef(tx_id, index))
    return refs


def _check_value(value: Any) -> None:
    ok = isinstance(value, dict) and isinstance(value.get("ada"), dict)
    ok = ok and isinstance(value["ada"].get("lovelace"), int)
    for policy, names in value.items() if ok else ():
        if policy != "ada" and not (is_hex(policy, 56) and isinstance(names, dict)):
            ok = False
    if not ok:
        raise RpcFault(INVALID_PARAMS, "Invalid request: invalid 'value' in 'additionalUtxo'.")


def _check_script(script: Any) -> None:
    """Plutus scripts must be given once-wrapped (a CBOR byte string), as Ogmios requires."""
    if isinstance(script, str):  # a bare hex string is the script-reference encoding #6.24(…)
        if not is_hex(script):
            raise RpcFault(INVALID_PARAMS, "Invalid request: invalid 'script' in 'additionalUtxo'.")
        return
    if not isinstance(script, dict) or not isinstance(script.get("language"), str):
        raise RpcFault(INVALID_PARAMS, "Invalid request: invalid 'script' in 'additionalUtxo'.")
    if script["language"] == "native":
        if "json" not in script and not is_hex(script.get("cbor")):
            raise RpcFault(INVALID_PARAMS, "Invalid request: a native script needs 'json' or 'cbor'.")
        return
    cbor_hex = script.get("cbor")
    if (
        script["language"] not in ("plutus:v1", "plutus:v2", "plutus:v3")
        or not isinstance(cbor_hex, str)
        or not is_hex(cbor_hex)
    ):
        raise RpcFault(INVALID_PARAMS, "Invalid request: invalid 'script' in 'additionalUtxo'.")
    raw = bytes.fromhex(cbor_hex)
    prefix = _wrapping_prefix(raw)
    if prefix is None:
        raise RpcFault(INVALID_PARAMS, "Invalid request: couldn't decode plutus script: not a CBOR byte string.")
    if prefix:
        raise RpcFault(
            INVALID_PARAMS,
            "Invalid request: couldn't decode plutus script: the script looks wrapped once too many. "
            f"Please drop '{prefix.hex()}' from the beginning of the script.",
        )


def _wrapping_prefix(raw: bytes) -> bytes | None:
    """Bytes before the innermost script byte string: b'' when once-wrapped, None when undecodable.

    ``48…`` (a byte string) is right; ``d8184c820249 48…`` (a script reference) and ``820249 48…``
    (``[language, script]``) carry extra wrapping that Ogmios asks to drop.
    """
    pos = 0
    try:
        for _ in range(4):
            major, _, after = cborraw.read_head(raw, pos)
            if major == 2:
                return raw[:pos]
            if major == 6:
                pos = after
            elif major == 4:  # [language, script]: skip the language
                pos = cborraw.item_end(raw, after)
            else:
                return None
            inner_major, _, inner_after = cborraw.read_head(raw, pos)
            if inner_major == 2 and inner_after < len(raw) and raw[inner_after] >> 5 in (2, 4):
                pos = inner_after  # a byte string holding more CBOR: look inside it
    except cborraw.CborError:
        return None
    return None

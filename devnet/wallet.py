"""Devnet test wallets: the server half of a CIP-30 wallet, for trying the wallet flow with no extension.

DEVNET ONLY. A wallet's keys are derived from the devnet seed and its name (anyone who knows the seed
knows them), so these wallets never hold anything of value. The studio page's
``window.cardano.devnet`` shim calls these endpoints (through the gateway's devnet-only proxy) and
answers CIP-30 calls from them:

- ``POST /devnet/wallets/{name}`` → ``{name, address, address_hex, reward_address_hex, network_id}``
- ``GET  /devnet/wallets/{name}/utxos`` → ``{utxos: [hex CBOR TransactionUnspentOutput]}``
- ``GET  /devnet/wallets/{name}/balance`` → ``{balance: hex CBOR Value, lovelace, assets}``
- ``POST /devnet/wallets/{name}/sign-tx {tx, partial_sign}`` → ``{witness_set: hex}`` (its own vkey
  witness only, as CIP-30 ``signTx(tx, true)`` returns)
- ``POST /devnet/wallets/{name}/sign-data {address, payload}`` → ``{signature, key}`` (CIP-8 COSE_Sign1
  and COSE_Key, hex) signed by the payment key, or by the stake key when ``address`` is the reward
  address (what a wallet does; the gateway must refuse that for login)
- ``POST /devnet/wallets/{name}/submit-tx {tx}`` → ``{tx_id}``

A wallet is a base address (payment key + stake key). Names are 1–32 letters, digits, ``-`` or ``_``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import cbor2
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devnet.chain import Chain
from devnet.genesis import derive_key
from devnet.ledger.address import address_to_text
from devnet.ledger.decode import decode_tx
from devnet.ledger.types import LedgerError, LedgerRejection

__all__ = ["DevnetWallet", "add_wallet_routes", "cose_sign1"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_TX_BYTES = 32 * 1024
MAX_PAYLOAD_BYTES = 8 * 1024


class WalletProblem(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class DevnetWallet:
    name: str
    payment_secret: bytes
    payment_vkey: bytes
    stake_secret: bytes
    stake_vkey: bytes
    network_id: int

    @classmethod
    def derive(cls, seed: str, name: str, network_id: int) -> DevnetWallet:
        pay = derive_key(seed, f"wallet/{name}/payment", network_id)
        stake = derive_key(seed, f"wallet/{name}/stake", network_id)
        return cls(name, pay.secret, pay.vkey, stake.secret, stake.vkey, network_id)

    @property
    def payment_hash(self) -> bytes:
        return hashlib.blake2b(self.payment_vkey, digest_size=28).digest()

    @property
    def stake_hash(self) -> bytes:
        return hashlib.blake2b(self.stake_vkey, digest_size=28).digest()

    @property
    def address_bytes(self) -> bytes:
        return bytes([0x00 | self.network_id]) + self.payment_hash + self.stake_hash

    @property
    def reward_address_bytes(self) -> bytes:
        return bytes([0xE0 | self.network_id]) + self.stake_hash

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "address": address_to_text(self.address_bytes),
                "address_hex": self.address_bytes.hex(), "reward_address_hex": self.reward_address_bytes.hex(),
                "network_id": self.network_id}

    def sign_tx(self, tx_cbor: bytes, chain: Chain, partial_sign: bool) -> bytes:
        try:
            tx = decode_tx(tx_cbor)
        except (LedgerError, LedgerRejection, ValueError) as exc:
            raise WalletProblem(400, "invalid_tx", f"not a transaction this wallet can read: {exc}") from None
        ours = self.address_bytes
        needs_us = any((out := chain.lookup(ref)) is not None and out.address_bytes == ours for ref in tx.inputs)
        required = tx.body.get(14) or []
        needs_us = needs_us or any(bytes(k) == self.payment_hash for k in required)
        if not needs_us:
            raise WalletProblem(400, "proof_generation", "this wallet has no key this transaction needs")
        foreign = [ref for ref in tx.inputs if (out := chain.lookup(ref)) is not None and out.address_bytes != ours]
        if foreign and not partial_sign:
            raise WalletProblem(400, "proof_generation",
                                "the transaction needs other keys too; ask with partialSign = true")
        body_hash = hashlib.blake2b(tx.body_bytes, digest_size=32).digest()
        signature = Ed25519PrivateKey.from_private_bytes(self.payment_secret).sign(body_hash)
        return cbor2.dumps({0: [[self.payment_vkey, signature]]})

    def sign_data(self, address: bytes, payload: bytes) -> tuple[bytes, bytes]:
        if address == self.address_bytes:
            secret, vkey = self.payment_secret, self.payment_vkey
        elif address == self.reward_address_bytes:
            secret, vkey = self.stake_secret, self.stake_vkey
        else:
            raise WalletProblem(400, "address_not_pk", "this wallet does not own that address")
        return cose_sign1(secret, address, payload), cose_key(vkey)


def cose_sign1(secret: bytes, address: bytes, payload: bytes) -> bytes:
    """CIP-8 COSE_Sign1: protected {alg: EdDSA, "address": bytes}, unprotected {"hashed": false}."""
    protected = cbor2.dumps({1: -8, "address": address})
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload])
    signature = Ed25519PrivateKey.from_private_bytes(secret).sign(sig_structure)
    return cbor2.dumps([protected, {"hashed": False}, payload, signature])


def cose_key(vkey: bytes) -> bytes:
    """COSE_Key for an Ed25519 public key: kty OKP, alg EdDSA, crv Ed25519, x."""
    return cbor2.dumps({1: 1, 3: -8, -1: 6, -2: vkey})


def _value_cbor(lovelace: int, assets: dict[str, dict[str, int]]) -> bytes:
    if not assets:
        return cbor2.dumps(lovelace)
    multi = {bytes.fromhex(p): {bytes.fromhex(n): q for n, q in names.items()} for p, names in assets.items()}
    return cbor2.dumps([lovelace, multi])


def _wallet(request: web.Request) -> tuple[DevnetWallet, Chain]:
    name = request.match_info["name"]
    if not _NAME.match(name):
        raise WalletProblem(400, "invalid_name", "wallet names are 1-32 letters, digits, '-' or '_'")
    chain: Chain = request.app["wallet_chain"]
    return DevnetWallet.derive(chain.genesis.seed, name, chain.genesis.network_id), chain


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise WalletProblem(400, "invalid_json", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise WalletProblem(400, "invalid_json", "the body must be a JSON object")
    return body


def _hex_field(body: dict[str, Any], name: str, limit: int) -> bytes:
    raw = body.get(name)
    if not isinstance(raw, str) or len(raw) > 2 * limit:
        raise WalletProblem(400, "invalid_field", f"'{name}' must be a hex string of at most {limit} bytes")
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise WalletProblem(400, "invalid_field", f"'{name}' is not hex") from None


def _guard(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            result: web.StreamResponse = await handler(request)
            return result
        except WalletProblem as exc:
            return web.json_response({"status": exc.status, "code": exc.code, "message": exc.message},
                                     status=exc.status)
    return wrapped


async def _open(request: web.Request) -> web.Response:
    wallet, _ = _wallet(request)
    return web.json_response(wallet.describe())


async def _utxos(request: web.Request) -> web.Response:
    wallet, chain = _wallet(request)
    found = chain.spendable_at(wallet.address_bytes)
    # [input, output] with the output's original bytes (a wallet must not re-encode what it read).
    items = [(b"\x82" + cbor2.dumps([bytes.fromhex(ref.tx_id), ref.index]) + out.raw).hex()
             for ref, out in sorted(found, key=lambda item: (item[0].tx_id, item[0].index))]
    return web.json_response({"utxos": items})


async def _balance(request: web.Request) -> web.Response:
    wallet, chain = _wallet(request)
    lovelace = 0
    assets: dict[str, dict[str, int]] = {}
    for _, out in chain.spendable_at(wallet.address_bytes):
        lovelace += out.lovelace
        for policy, names in out.assets.items():
            bucket = assets.setdefault(policy, {})
            for name, qty in names.items():
                bucket[name] = bucket.get(name, 0) + qty
    return web.json_response({"balance": _value_cbor(lovelace, assets).hex(), "lovelace": lovelace,
                              "assets": assets})


async def _sign_tx(request: web.Request) -> web.Response:
    wallet, chain = _wallet(request)
    body = await _body(request)
    tx = _hex_field(body, "tx", MAX_TX_BYTES)
    partial = body.get("partial_sign", False)
    if not isinstance(partial, bool):
        raise WalletProblem(400, "invalid_field", "'partial_sign' must be a boolean")
    return web.json_response({"witness_set": wallet.sign_tx(tx, chain, partial).hex()})


async def _sign_data(request: web.Request) -> web.Response:
    wallet, _ = _wallet(request)
    body = await _body(request)
    signature, key = wallet.sign_data(_hex_field(body, "address", 64), _hex_field(body, "payload", MAX_PAYLOAD_BYTES))
    return web.json_response({"signature": signature.hex(), "key": key.hex()})


async def _submit_tx(request: web.Request) -> web.Response:
    _, chain = _wallet(request)
    body = await _body(request)
    try:
        tx = chain.submit(_hex_field(body, "tx", MAX_TX_BYTES))
    except (LedgerError, LedgerRejection) as exc:
        raise WalletProblem(400, "tx_rejected", f"the devnet refused the transaction: {exc}") from None
    return web.json_response({"tx_id": tx.id})


def add_wallet_routes(app: web.Application, chain: Chain) -> None:
    """Mount the wallet endpoints on the control API's app."""
    app["wallet_chain"] = chain
    app.router.add_post("/devnet/wallets/{name}", _guard(_open))
    app.router.add_get("/devnet/wallets/{name}/utxos", _guard(_utxos))
    app.router.add_get("/devnet/wallets/{name}/balance", _guard(_balance))
    app.router.add_post("/devnet/wallets/{name}/sign-tx", _guard(_sign_tx))
    app.router.add_post("/devnet/wallets/{name}/sign-data", _guard(_sign_data))
    app.router.add_post("/devnet/wallets/{name}/submit-tx", _guard(_submit_tx))

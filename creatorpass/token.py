"""``creatorpass token``: the $CREATE policy and the operator's mint ceremony.

- ``token show`` prints the policy id, asset name and addresses from the signer's key store (``python -m
  signer keys show``: public data only) and the ``.env`` lines the bundle needs.
- ``token mint --quantity N`` runs the mint ceremony against a signer started with ``serve --mint-ceremony
  N``: it builds a Conway transaction minting exactly N $CREATE into the custodial address from the
  treasury's own UTxO (exact fee from the node's protocol parameters, TTL ten minutes ahead), has the
  signer sign it over the ceremony's own socket (``ceremony.sock``, which only the signer's own user may
  open), attaches the policy's native script and submits it through Ogmios. The signer checks every
  byte itself; this command only saves the operator from building the transaction by hand.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from typing import Any

import cbor2

from common.bech32 import decode as bech32_decode

__all__ = ["MintPlan", "build_mint", "mint", "show"]

TTL_SLOTS = 600
VKEY_WITNESSES = 2  # the payment key (spends the treasury UTxO) and the policy key (mints)


class TokenError(Exception):
    """A ceremony step failed; the message says which and why."""


def show(env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "signer", "keys", "show"], env=env, capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise TokenError(f"signer keys show failed: {out.stderr.strip() or out.stdout.strip()}")
    identity: dict[str, Any] = json.loads(out.stdout)
    return identity


def _ogmios(url: str, method: str, params: dict[str, Any] | None = None) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params or {}, "id": method}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer = json.loads(resp.read())
    if "error" in answer:
        raise TokenError(f"Ogmios {method}: {answer['error'].get('message')} {answer['error'].get('data', '')}")
    return answer["result"]


def _address_bytes(address: str) -> bytes:
    try:
        return bech32_decode(address)[1]
    except ValueError as exc:
        raise TokenError(f"not a bech32 address: {address}: {exc}") from None


@dataclass(frozen=True)
class MintPlan:
    body: bytes
    tx_id: str
    fee: int
    ttl: int
    current_slot: int


def _value(coin: int, assets: dict[str, dict[str, int]]) -> Any:
    if not assets:
        return coin
    return [coin, {bytes.fromhex(p): {bytes.fromhex(n): q for n, q in sorted(names.items())}
                   for p, names in sorted(assets.items())}]


def build_mint(identity: dict[str, Any], utxo: dict[str, Any], params: dict[str, Any], tip_slot: int,
               quantity: int) -> MintPlan:
    """The ceremony's body: one treasury input, one treasury output with the new tokens, the mint."""
    policy, name = identity["policy_id"], identity["asset_name"]
    coin = int(utxo["value"]["ada"]["lovelace"])
    assets = {p: dict(v) for p, v in utxo["value"].items() if p != "ada"}
    assets.setdefault(policy, {})
    assets[policy][name] = assets[policy].get(name, 0) + quantity
    address = _address_bytes(identity["custodial_address"])
    script = bytes.fromhex(identity["policy_script_cbor"])
    a = int(params["minFeeCoefficient"])
    b = int(params["minFeeConstant"]["ada"]["lovelace"])
    ttl = tip_slot + TTL_SLOTS
    fee = 200_000
    for _ in range(3):  # the fee changes the output's size only slightly: converge
        body = cbor2.dumps({0: [[bytes.fromhex(utxo["transaction"]["id"]), int(utxo["index"])]],
                            1: [[address, _value(coin - fee, assets)]], 2: fee, 3: ttl,
                            9: {bytes.fromhex(policy): {bytes.fromhex(name): quantity}}})
        witnesses = cbor2.dumps({0: [[b"\0" * 32, b"\0" * 64]] * VKEY_WITNESSES, 1: [cbor2.loads(script)]})
        size = 1 + len(body) + len(witnesses) + 1  # [body, witnesses, null]: what Conway's fee measures
        needed = a * size + b
        if needed <= fee:
            break
        fee = needed
    if coin - fee < 1_000_000:
        raise TokenError(f"the treasury UTxO holds {coin} lovelace: not enough for the fee and the output")
    return MintPlan(body, hashlib.blake2b(body, digest_size=32).hexdigest(), fee, ttl, tip_slot)


def _pick_utxo(utxos: list[dict[str, Any]]) -> dict[str, Any]:
    if not utxos:
        raise TokenError("the custodial address has no UTxO: send it some ADA first (the ceremony pays its fee)")
    return max(utxos, key=lambda u: int(u["value"]["ada"]["lovelace"]))


def _sign(socket_path: str, plan: MintPlan, quantity: int, note: str) -> bytes:
    import grpc

    from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc

    tx = b"\x84" + plan.body + b"\xa0\xf5\xf6"
    with grpc.insecure_channel(f"unix:{socket_path}") as channel:
        stub = signer_pb2_grpc.SignerServiceStub(channel)
        try:
            reply = stub.SignMintCeremony(signer_pb2.SignMintCeremonyRequest(
                tx_cbor=tx, quantity=quantity, operator_note=note, current_slot=plan.current_slot), timeout=30)
        except grpc.RpcError as exc:
            raise TokenError(f"the signer refused: {exc.code().name}: {exc.details()}") from None
    if reply.tx_id != plan.tx_id:
        raise TokenError(f"the signer signed {reply.tx_id}, not {plan.tx_id}")
    return bytes(reply.witness_set_cbor)


def mint(*, identity: dict[str, Any], ogmios_url: str, ceremony_socket: str, quantity: int,
         note: str) -> dict[str, Any]:
    if quantity <= 0:
        raise TokenError("--quantity must be positive")
    http = ogmios_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rstrip("/") + "/"
    utxos = _ogmios(http, "queryLedgerState/utxo", {"addresses": [identity["custodial_address"]]})
    params = _ogmios(http, "queryLedgerState/protocolParameters")
    tip = _ogmios(http, "queryNetwork/tip")
    plan = build_mint(identity, _pick_utxo(utxos), params, int(tip.get("slot", 0)), quantity)
    signed = cbor2.loads(_sign(ceremony_socket, plan, quantity, note))
    witness_set = {0: signed[0], 1: [cbor2.loads(bytes.fromhex(identity["policy_script_cbor"]))]}
    tx = b"\x84" + plan.body + cbor2.dumps(witness_set) + b"\xf5\xf6"  # the signed body bytes, untouched
    result = _ogmios(http, "submitTransaction", {"transaction": {"cbor": tx.hex()}})
    return {"tx_id": result["transaction"]["id"], "fee": plan.fee, "quantity": quantity,
            "asset": f"{identity['policy_id']}.{identity['asset_name']}", "to": identity["custodial_address"]}

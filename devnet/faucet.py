"""Fast construction of real, signed transactions: the genesis distribution, faucet payments and the
"typical" traffic used to fill benchmark chains.  Bodies are built with cbor2 and signed with
``cryptography`` Ed25519 directly (pycardano would dominate the cost of a big chain)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cbor2

from devnet.genesis import GenesisKey
from devnet.ledger.address import address_from_text
from devnet.ledger.decode import decode_tx
from devnet.ledger.native import NativeScript
from devnet.ledger.types import LedgerError, LedgerRejection, OutRef, TxOut
from devnet.values import add_assets, assets_from_flat, sub_assets

if TYPE_CHECKING:
    from devnet.chain import Chain

__all__ = ["FaucetError", "TypicalFiller", "build_distribution", "build_fund", "encode_output", "plain_output"]

_FEE_PLACEHOLDER = 0xFFFFFFFF  # same CBOR width as any real fee below 4294 ADA
MAX_FUND_ASSETS = 64


class FaucetError(LedgerError, ValueError):
    """A funding request the faucet cannot honour (bad amount, asset id, address)."""


def _encode_value(lovelace: int, assets: dict[str, dict[str, int]]) -> Any:
    if not assets:
        return lovelace
    multiasset = {
        bytes.fromhex(policy): {bytes.fromhex(name): qty for name, qty in sorted(names.items())}
        for policy, names in sorted(assets.items())
    }
    return [lovelace, multiasset]


def _output_obj(address_bytes: bytes, lovelace: int, assets: dict[str, dict[str, int]] | None) -> dict[int, Any]:
    return {0: address_bytes, 1: _encode_value(lovelace, assets or {})}


def encode_output(address_bytes: bytes, lovelace: int, assets: dict[str, dict[str, int]] | None = None) -> bytes:
    """A post-Alonzo map-form output."""
    return cbor2.dumps(_output_obj(address_bytes, lovelace, assets))


def plain_output(address_bytes: bytes, lovelace: int) -> TxOut:
    from devnet.ledger.address import address_to_text

    raw = encode_output(address_bytes, lovelace)
    return TxOut(address_to_text(address_bytes), address_bytes, lovelace, {}, None, None, None, raw)


def _assemble(
    body: dict[int, Any],
    keys: Sequence[GenesisKey],
    scripts: Sequence[NativeScript] = (),
    aux: bytes | None = None,
    *,
    sign: bool = True,
) -> bytes:
    body_bytes = cbor2.dumps(body)
    digest = hashlib.blake2b(body_bytes, digest_size=32).digest()
    witness: dict[int, Any] = {0: [[key.vkey, key.sign(digest) if sign else bytes(64)] for key in keys]}
    if scripts:
        witness[1] = [script.to_cbor() for script in scripts]
    witness_bytes = cbor2.dumps(witness)
    return b"\x84" + body_bytes + witness_bytes + b"\xf5" + (aux if aux is not None else b"\xf6")


def _balanced(
    chain: Chain,
    inputs: list[tuple[OutRef, TxOut]],
    payments: list[tuple[bytes, int, dict[str, dict[str, int]]]],
    change_address: bytes,
    keys: Sequence[GenesisKey],
    *,
    mint: dict[str, dict[str, int]] | None = None,
    scripts: Sequence[NativeScript] = (),
    metadata: dict[int, Any] | None = None,
) -> bytes:
    """Build a tx paying ``payments`` from ``inputs`` with the exact min fee and one change output."""
    in_lovelace = sum(out.lovelace for _, out in inputs)
    in_assets = add_assets(*(out.assets for _, out in inputs), mint or {})
    paid_lovelace = sum(lovelace for _, lovelace, _ in payments)
    change_assets = sub_assets(in_assets, add_assets(*(assets for _, _, assets in payments)))
    if any(q < 0 for names in change_assets.values() for q in names.values()):
        raise FaucetError("the inputs do not hold the assets to pay")
    outputs = [_output_obj(addr, lovelace, assets) for addr, lovelace, assets in payments]
    body: dict[int, Any] = {
        0: [[bytes.fromhex(ref.tx_id), ref.index] for ref, _ in inputs],
        1: [],
        2: _FEE_PLACEHOLDER,
    }
    aux = cbor2.dumps(metadata) if metadata else None
    if aux is not None:
        body[7] = hashlib.blake2b(aux, digest_size=32).digest()
    if mint:
        body[9] = {bytes.fromhex(p): {bytes.fromhex(n): q for n, q in sorted(names.items())}
                   for p, names in sorted(mint.items())}
    fee = chain.params.min_fee(300)  # a first guess; the loop settles it (usually at once)
    for _ in range(4):  # the change amount's CBOR width can move the size by a byte or two
        change = in_lovelace - paid_lovelace - fee
        if change < chain.params.min_utxo(120):
            raise FaucetError("the inputs cannot cover the payment, its fee and the change")
        body[1] = [*outputs, _output_obj(change_address, change, change_assets)]
        body[2] = _FEE_PLACEHOLDER  # the widest fee encoding: real fees never need more bytes
        needed = chain.params.min_fee(len(_assemble(body, keys, scripts, aux, sign=False)))
        if needed <= fee and in_lovelace - paid_lovelace - needed >= 0:
            body[2] = fee  # paying a few lovelace over the minimum beats another round
            return _assemble(body, keys, scripts, aux)
        fee = needed
    raise FaucetError("could not settle the fee")


def build_distribution(chain: Chain, funds: list[tuple[str, int]]) -> bytes:
    """The first block's tx: the faucet's genesis output pays every initial-funds address."""
    faucet = chain.genesis.faucet
    ref = chain.faucet_genesis_ref
    payments: list[tuple[bytes, int, dict[str, dict[str, int]]]] = [
        (address_from_text(address), lovelace, {}) for address, lovelace in funds
    ]
    return _balanced(chain, [(ref, chain.utxo[ref])], payments, faucet.address_bytes, [faucet])


def build_fund(chain: Chain, address_bytes: bytes, lovelace: int, flat_assets: dict[str, int]) -> bytes:
    """A faucet payment; ``flat_assets`` (``{"<policy>.<namehex>": qty}``) are minted without a script."""
    if not isinstance(lovelace, int) or isinstance(lovelace, bool) or lovelace <= 0:
        raise FaucetError("lovelace must be a positive integer")
    if len(flat_assets) > MAX_FUND_ASSETS:
        raise FaucetError(f"at most {MAX_FUND_ASSETS} assets per funding request")
    for key, qty in flat_assets.items():
        policy, _, name = key.partition(".")
        if len(policy) != 56 or len(name) > 64 or len(name) % 2:
            raise FaucetError(f"asset {key!r} is not '<policy id: 56 hex>.<asset name: hex, up to 64>'")
        try:
            bytes.fromhex(policy + name)
        except ValueError as exc:
            raise FaucetError(f"asset {key!r} is not hex") from exc
        if not isinstance(qty, int) or isinstance(qty, bool) or not 0 < qty < 1 << 63:
            raise FaucetError(f"quantity of {key!r} must be a positive 64-bit integer")
    assets = assets_from_flat(flat_assets)
    minimum = chain.params.min_utxo(len(encode_output(address_bytes, lovelace, assets)))
    if lovelace < minimum:
        raise FaucetError(f"lovelace {lovelace} is below this output's minimum of {minimum}")
    faucet = chain.genesis.faucet
    ref, out = _richest(chain, faucet.address_bytes, "the faucet")
    return _balanced(chain, [(ref, out)], [(address_bytes, lovelace, assets)], faucet.address_bytes,
                     [faucet], mint=assets)


def _richest(chain: Chain, address_bytes: bytes, who: str) -> tuple[OutRef, TxOut]:
    """The richest output at an address, as the mempool sees it."""
    spendable = chain.spendable_at(address_bytes)
    if not spendable:
        raise FaucetError(f"{who} has no unspent output")
    return max(spendable, key=lambda pair: pair[1].lovelace)


class TypicalFiller:
    """Generates "typical" traffic for benchmark chains: payments among the genesis keys, one in four
    also minting a token under the sender's ``sig`` policy (with metadata) and sending it along."""

    def __init__(self, chain: Chain, txs_per_block: int = 4) -> None:
        self.chain = chain
        self.txs_per_block = txs_per_block
        self.keys = chain.genesis.keys or [chain.genesis.faucet]
        self.count = 0
        self.current: dict[str, tuple[OutRef, TxOut]] = {}  # key name -> its latest change output
        self.policies = [NativeScript("signature", key_hash=key.key_hash.hex()) for key in self.keys]

    def _spendable(self, key: GenesisKey) -> tuple[OutRef, TxOut]:
        tracked = self.current.get(key.name)
        if tracked is not None and self.chain.lookup(tracked[0]) is not None:
            return tracked
        best = _richest(self.chain, key.address_bytes, f"genesis key {key.name}")
        if best[1].lovelace < 10_000_000:
            raise FaucetError(f"genesis key {key.name} has no funds left for typical traffic")
        return best

    def make_tx(self) -> bytes:
        index = self.count % len(self.keys)
        sender, receiver = self.keys[index], self.keys[(index + 1) % len(self.keys)]
        self.count += 1
        source = self._spendable(sender)
        if self.count % 4:
            return _balanced(self.chain, [source], [(receiver.address_bytes, 1_500_000, {})],
                             sender.address_bytes, [sender])
        policy = self.policies[index]
        token = {policy.hash: {b"BENCH".hex(): 10}}
        return _balanced(self.chain, [source], [(receiver.address_bytes, 1_500_000, token)],
                         sender.address_bytes, [sender], mint=token, scripts=[policy],
                         metadata={674: {"msg": [f"bench mint {self.count}"]}})

    def fill_mempool(self) -> None:
        for _ in range(self.txs_per_block):
            sender = self.keys[self.count % len(self.keys)]
            tx = decode_tx(self.make_tx())
            try:
                self.chain.submit_decoded(tx, trusted=True)
            except LedgerRejection as exc:
                raise FaucetError(f"typical tx rejected: {exc}") from exc
            change = len(tx.outputs) - 1
            self.current[sender.name] = (OutRef(tx.id, change), tx.outputs[change])

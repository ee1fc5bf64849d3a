"""Builders shared by the signer tests: provisioned key stores, cores, raw-CBOR transactions, processes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common import merkle
from common.settings import load_settings
from signer.app import build_core
from signer.chain import blake2b_256
from signer.core import SignerCore
from signer.keystore import KdfParams, Pkcs11Config, Pkcs11KeyStore, write_key_file
from signer.policy import PolicyConfig
from signer.settings import SignerSettings
from tests.support.softhsm import SoftHsm

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "correct horse battery staple"
FAST_KDF = KdfParams(time_cost=1, memory_kib=8192)
CURRENT_SLOT = 10_000
ZERO_TX = bytes(32)
COINS_PER_UTXO_BYTE = 4_310  # the signer's default, as on mainnet


@dataclass
class Provisioned:
    """A key store ready to use and the environment a signer needs to open it."""

    env: dict[str, str]
    seeds: dict[str, Ed25519PrivateKey] = field(default_factory=dict)  # only when known (file store, imports)


def short_tmp() -> Path:
    """A short directory (unix socket paths are limited to ~107 bytes)."""
    return Path(tempfile.mkdtemp(prefix="sg", dir="/tmp"))


def provision(store: str, workdir: Path, mode: str = "mint", softhsm: SoftHsm | None = None,
              extra: Mapping[str, str] | None = None, import_keys: bool = False) -> Provisioned:
    """Create keys for ``store`` ("file" or "pkcs11") and return the signer environment for them."""
    roles = ("payment", "policy") if mode == "mint" else ("payment",)
    keys = {role: Ed25519PrivateKey.generate() for role in roles}
    # The signer's clock puts CURRENT_SLOT at now (1-second slots), so tests can keep using it.
    env = {"SIGNER_DATA_DIR": str(workdir / "data"), "SIGNER_NETWORK_ID": "0", "SIGNER_SINK_MODE": mode,
           "SIGNER_SYSTEM_START": str(int(time.time()) - CURRENT_SLOT),
           "SIGNER_KEY_STORE": store, "SIGNER_LISTEN": f"unix:{workdir / 'signer.sock'}",
           "SIGNER_KDF_MEMORY_KIB": "8192", "SIGNER_LOG_LEVEL": "INFO"}
    if mode == "address":
        env["SIGNER_ASSET_POLICY_ID"] = "ab" * 28
    if store == "file":
        pass_file = workdir / "passphrase"
        pass_file.write_text(PASSPHRASE + "\n")
        env["SIGNER_PASSPHRASE_FILE"] = str(pass_file)
        write_key_file(workdir / "data" / "keys.json", dict(keys), PASSPHRASE, FAST_KDF)
        known: dict[str, Ed25519PrivateKey] = dict(keys)
    else:
        assert softhsm is not None
        token, prefix = softhsm.token, softhsm.new_keyspace()
        env.update(SIGNER_PKCS11_MODULE=str(softhsm.module), SIGNER_PKCS11_TOKEN=token.label,
                   SIGNER_PKCS11_PIN_FILE=str(token.pin_file), SIGNER_PKCS11_KEY_PREFIX=prefix)
        config = Pkcs11Config(softhsm.module, token.label, token.pin, prefix)
        if import_keys:
            Pkcs11KeyStore.import_keys(config, dict(keys))
            known = dict(keys)
        else:
            Pkcs11KeyStore.generate(config, roles)  # generated inside the token: nobody knows the seed
            known = {}
    env.update(extra or {})
    return Provisioned(env, known)


def settings_for(env: Mapping[str, str]) -> SignerSettings:
    return load_settings(SignerSettings, env=dict(env))


def make_core(prov: Provisioned, *, mint_ceremony: int = 0, clock: Callable[[], float] = time.time,
              **overrides: str) -> SignerCore:
    """A core for ``prov``; ``mint_ceremony`` is the ceremony's quantity (0: off)."""
    return build_core(settings_for({**prov.env, **overrides}), mint_ceremony_quantity=mint_ceremony, clock=clock)


def gen_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(count)]


@dataclass
class BurnTx:
    """A burn transaction in raw CBOR, built field by field so tests can bend any part of it."""

    cfg: PolicyConfig
    ids: list[str]
    fee: int = 180_000
    ttl: int | None = CURRENT_SLOT + 600
    change_lovelace: int = 5_000_000
    sink_lovelace: int | None = None  # None: the ledger's minimum for the sink output, as a burner pays it
    inputs: list[list[Any]] = field(default_factory=lambda: [[ZERO_TX, 0]])

    def sink_output(self, lovelace: int | None = None) -> list[Any]:
        cfg = self.cfg
        assets = {cfg.policy_id: {cfg.asset_name: len(self.ids)}}
        if lovelace is None:  # (160 + output size) * coinsPerUTxOByte, with the coin's own size settled
            lovelace = 1_000_000
            for _ in range(3):
                lovelace = (160 + len(cbor2.dumps([cfg.sink_address, [lovelace, assets]]))) * COINS_PER_UTXO_BYTE
        return [cfg.sink_address, [lovelace, assets]]

    def body(self) -> dict[int, Any]:
        cfg, n = self.cfg, len(self.ids)
        body: dict[int, Any] = {0: [list(i) for i in self.inputs], 2: self.fee}
        if cfg.sink_mode == "mint":
            body[1] = [[cfg.custodial_address, [self.change_lovelace, {cfg.policy_id: {cfg.asset_name: 50}}]]]
            body[9] = {cfg.policy_id: {cfg.asset_name: -n}}
        else:
            body[1] = [self.sink_output(self.sink_lovelace), [cfg.custodial_address, self.change_lovelace]]
        if self.ttl is not None:
            body[3] = self.ttl
        return body

    def metadata(self) -> dict[int, Any]:
        return {1967: {"v": 1, "n": len(self.ids), "root": merkle.merkle_root(self.ids).hex()}}

    def encode(self, body: dict[int, Any] | None = None, aux: Any = "default", *,
               aux_hash: bytes | None = None) -> bytes:
        body = self.body() if body is None else body
        aux = self.metadata() if aux == "default" else aux
        if aux is not None and 7 not in body:
            body[7] = aux_hash or blake2b_256(cbor2.dumps(aux))
        return cbor2.dumps([body, {}, True, aux])


def tx_id_of(tx_cbor: bytes) -> bytes:
    """The body hash of a full transaction built by :class:`BurnTx` (definite lengths, so re-encoding is exact)."""
    return blake2b_256(cbor2.dumps(cbor2.loads(tx_cbor)[0]))


def verify_witnesses(witness_set_cbor: bytes, tx_id: bytes) -> list[bytes]:
    """Check every vkey witness against ``tx_id``; return the public keys that signed."""
    witnesses = cbor2.loads(witness_set_cbor)[0]
    for vkey, signature in witnesses:
        Ed25519PublicKey.from_public_bytes(vkey).verify(signature, tx_id)
    return [vkey for vkey, _ in witnesses]


# --- processes ------------------------------------------------------------------------------------

def python_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNER_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_cli(args: list[str], env: Mapping[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signer", *args], env=python_env(env), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s)


class SignerProcess:
    """``python -m signer serve`` as a child process; stderr goes to a file the tests can read."""

    def __init__(self, env: Mapping[str, str], workdir: Path, args: tuple[str, ...] = ()) -> None:
        self.env = dict(env)
        self.target = self.env["SIGNER_LISTEN"]
        self.stderr_path = workdir / f"signer-{time.monotonic_ns()}.log"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "signer", "serve", *args], env=python_env(self.env),
                                     cwd=ROOT, stdout=self._stderr, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 30.0, tls: grpc.ChannelCredentials | None = None,
                   target: str | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        target = target or self.target
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"signer exited with {self.proc.returncode}: {self.log()}")
            channel = grpc.secure_channel(target, tls) if tls else grpc.insecure_channel(target)
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1.0,
                                                                   wait_for_ready=True)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            finally:
                channel.close()
        raise TimeoutError(f"signer not ready after {timeout_s}s: {self.log()}")

    def log(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._stderr.close()
        return self.proc.returncode

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._stderr.close()

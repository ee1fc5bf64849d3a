"""The devnet's genesis: network constants, deterministic keys derived from a seed, initial funds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from devnet.ledger.address import address_to_text, enterprise_address
from devnet.ledger.params import ProtocolParameters

__all__ = ["FAUCET_LOVELACE", "Genesis", "GenesisKey", "derive_key"]

FAUCET_LOVELACE = 40_000_000_000_000_000  # 40 billion ADA held by the control API's faucet
MAX_LOVELACE_SUPPLY = 45_000_000_000_000_000
_ERAS = ("byron", "shelley", "allegra", "mary", "alonzo", "babbage", "conway")


def blake2b(data: bytes, size: int) -> bytes:
    return hashlib.blake2b(data, digest_size=size).digest()


@dataclass(frozen=True, slots=True)
class GenesisKey:
    """An Ed25519 payment key with its enterprise address (test use only: the secret is public)."""

    name: str
    secret: bytes  # 32-byte Ed25519 seed
    vkey: bytes
    key_hash: bytes
    address_bytes: bytes
    address: str

    def private_key(self) -> Ed25519PrivateKey:
        return _private_key(self.secret)

    def sign(self, message: bytes) -> bytes:
        return self.private_key().sign(message)

    def signing_key_cbor_hex(self) -> str:
        """The key as pycardano's ``PaymentSigningKey.from_cbor`` expects it."""
        return "5820" + self.secret.hex()

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "address": self.address,
            "verification_key": self.vkey.hex(),
            "key_hash": self.key_hash.hex(),
            "signing_key_cbor": self.signing_key_cbor_hex(),
        }


@lru_cache(maxsize=256)
def _private_key(secret: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(secret)


def derive_key(seed: str, name: str, network_id: int) -> GenesisKey:
    secret = blake2b(f"creatorpass-devnet/{seed}/{name}".encode(), 32)
    vkey = Ed25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_hash = blake2b(vkey, 28)
    address_bytes = enterprise_address(key_hash, network_id)
    return GenesisKey(name, secret, vkey, key_hash, address_bytes, address_to_text(address_bytes))


def _ratio(value: float) -> str:
    from fractions import Fraction

    frac = Fraction(value).limit_denominator(10_000)
    return f"{frac.numerator}/{frac.denominator}"


@dataclass(slots=True)
class Genesis:
    """Network constants and initial funds.  All eras start at slot 0 (a Conway-from-genesis devnet)."""

    seed: str
    system_start: datetime
    network_magic: int = 42
    network_id: int = 0
    epoch_length: int = 432000
    slot_length_s: int = 1
    security_param: int = 2160
    active_slots_coeff: float = 1.0
    key_count: int = 3
    key_lovelace: int = 100_000_000_000  # 100k ADA per seeded key
    extra_funds: list[tuple[str, int]] = field(default_factory=list)  # (address text, lovelace)
    keys: list[GenesisKey] = field(init=False)
    faucet: GenesisKey = field(init=False)

    def __post_init__(self) -> None:
        if self.system_start.tzinfo is None:
            self.system_start = self.system_start.replace(tzinfo=UTC)
        self.system_start = self.system_start.replace(microsecond=0)
        self.keys = [derive_key(self.seed, f"genesis-{i}", self.network_id) for i in range(self.key_count)]
        self.faucet = derive_key(self.seed, "faucet", self.network_id)

    @property
    def network(self) -> str:
        return "mainnet" if self.network_id == 1 else "testnet"

    @property
    def system_start_s(self) -> float:
        return self.system_start.timestamp()

    def start_time_text(self) -> str:
        return self.system_start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def genesis_hash(self) -> str:
        """A stable id for this genesis (used as the ``genesis`` ancestor's stand-in)."""
        payload = f"{self.seed}|{self.start_time_text()}|{self.network_magic}|{self.extra_funds}"
        return blake2b(payload.encode(), 32).hex()

    def initial_funds(self) -> list[tuple[str, int]]:
        """Addresses funded by the genesis distribution (seeded keys first, then configured extras)."""
        funds = [(key.address, self.key_lovelace) for key in self.keys]
        return funds + list(self.extra_funds)

    def to_state(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "system_start": self.start_time_text(),
            "network_magic": self.network_magic,
            "network_id": self.network_id,
            "epoch_length": self.epoch_length,
            "security_param": self.security_param,
            "key_count": self.key_count,
            "key_lovelace": self.key_lovelace,
            "extra_funds": [[address, lovelace] for address, lovelace in self.extra_funds],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Genesis:
        return cls(
            seed=str(state["seed"]),
            system_start=datetime.strptime(state["system_start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
            network_magic=int(state["network_magic"]),
            network_id=int(state["network_id"]),
            epoch_length=int(state["epoch_length"]),
            security_param=int(state["security_param"]),
            key_count=int(state["key_count"]),
            key_lovelace=int(state["key_lovelace"]),
            extra_funds=[(str(a), int(n)) for a, n in state.get("extra_funds", [])],
        )

    # -- Ogmios queryNetwork/genesisConfiguration and eraSummaries ---------------------------------

    def byron_json(self, params: ProtocolParameters) -> dict[str, Any]:
        return {
            "era": "byron",
            "genesisKeyHashes": [],
            "genesisDelegations": {},
            "startTime": self.start_time_text(),
            "initialFunds": {},
            "initialVouchers": {},
            "securityParameter": self.security_param,
            "networkMagic": self.network_magic,
            "updatableParameters": {  # Byron's bootstrap parameters (mainnet's values)
                "heavyDelegationThreshold": "3/10",
                "maxBlockBodySize": {"bytes": 2_000_000},
                "maxBlockHeaderSize": {"bytes": 2_000_000},
                "maxUpdateProposalSize": {"bytes": 700},
                "maxTransactionSize": {"bytes": 4096},
                "multiPartyComputationThreshold": "1/50",
                "scriptVersion": 0,
                "slotDuration": self.slot_length_s * 1000,
                "unlockStakeEpoch": 18446744073709551615,
                "updateProposalThreshold": "1/10",
                "updateProposalTimeToLive": 10,
                "updateVoteThreshold": "1/1000",
                "softForkInitThreshold": "9/10",
                "softForkMinThreshold": "3/5",
                "softForkDecrementThreshold": "1/20",
                "minFeeCoefficient": params.min_fee_coefficient,
                "minFeeConstant": {"ada": {"lovelace": params.min_fee_constant_lovelace}},
            },
        }

    def _initial_parameters(self, params: ProtocolParameters) -> dict[str, Any]:
        ogmios = params.to_ogmios()
        initial_keys = (
            "minFeeCoefficient", "minFeeConstant", "maxBlockBodySize", "maxBlockHeaderSize",
            "maxTransactionSize", "stakeCredentialDeposit", "stakePoolDeposit",
            "stakePoolRetirementEpochBound", "desiredNumberOfStakePools", "stakePoolPledgeInfluence",
            "monetaryExpansion", "treasuryExpansion", "minStakePoolCost", "minUtxoDepositConstant",
            "minUtxoDepositCoefficient", "version",
        )  # fmt: skip
        initial = {key: ogmios[key] for key in initial_keys}
        initial.update({"federatedBlockProductionRatio": "0/1", "extraEntropy": "neutral"})
        return initial

    def shelley_json(self, params: ProtocolParameters) -> dict[str, Any]:
        initial = self._initial_parameters(params)
        return {
            "era": "shelley",
            "startTime": self.start_time_text(),
            "networkMagic": self.network_magic,
            "network": self.network,
            "activeSlotsCoefficient": _ratio(self.active_slots_coeff),
            "securityParameter": self.security_param,
            "epochLength": self.epoch_length,
            "slotsPerKesPeriod": 129600,
            "maxKesEvolutions": 62,
            "slotLength": {"milliseconds": self.slot_length_s * 1000},
            "updateQuorum": 5,
            "maxLovelaceSupply": MAX_LOVELACE_SUPPLY,
            "initialParameters": initial,
            "initialDelegates": [],
            "initialFunds": {},
            "initialStakePools": {"stakePools": {}, "delegators": {}},
        }

    def alonzo_json(self, params: ProtocolParameters) -> dict[str, Any]:
        ogmios = params.to_ogmios()
        keys = (
            "minUtxoDepositCoefficient", "collateralPercentage", "plutusCostModels", "maxCollateralInputs",
            "maxExecutionUnitsPerBlock", "maxExecutionUnitsPerTransaction", "maxValueSize",
            "scriptExecutionPrices",
        )  # fmt: skip
        return {"era": "alonzo", "updatableParameters": {key: ogmios[key] for key in keys}}

    def conway_json(self, params: ProtocolParameters) -> dict[str, Any]:
        ogmios = params.to_ogmios()
        keys = (
            "stakePoolVotingThresholds", "constitutionalCommitteeMinSize",
            "constitutionalCommitteeMaxTermLength", "governanceActionLifetime", "governanceActionDeposit",
            "delegateRepresentativeVotingThresholds", "delegateRepresentativeDeposit",
            "delegateRepresentativeMaxIdleTime",
        )  # fmt: skip
        return {
            "era": "conway",
            "constitution": {
                "metadata": {"url": "https://creatorpass.invalid/devnet-constitution", "hash": "0" * 64},
                "guardrails": None,
            },
            "constitutionalCommittee": {"members": [], "quorum": "0/1"},
            "updatableParameters": {key: ogmios[key] for key in keys},
        }

    def era_summaries(self) -> list[dict[str, Any]]:
        """Seven eras (Byron..Conway); every hard fork happened at slot 0, Conway is open-ended."""
        origin = {"time": {"seconds": 0}, "slot": 0, "epoch": 0}
        parameters = {
            "epochLength": self.epoch_length,
            "slotLength": {"milliseconds": self.slot_length_s * 1000},
            "safeZone": 3 * self.security_param,
        }
        summaries: list[dict[str, Any]] = []
        for era in _ERAS:
            summary: dict[str, Any] = {"start": dict(origin), "parameters": dict(parameters)}
            if era != "conway":
                summary["end"] = dict(origin)
            summaries.append(summary)
        return summaries

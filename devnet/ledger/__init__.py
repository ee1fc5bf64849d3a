"""A Conway-era ledger model for what the creatorpass appliance uses (no Plutus)."""

from devnet.ledger.params import ProtocolParameters
from devnet.ledger.types import LedgerError, LedgerRejection, OutRef, Tx, TxOut

__all__ = ["LedgerError", "LedgerRejection", "OutRef", "ProtocolParameters", "Tx", "TxOut"]

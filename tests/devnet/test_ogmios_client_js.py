"""The official Ogmios TypeScript client (``@cardano-ogmios/client`` 6.14.0, from the npm registry) against a
real devnet process: the queries a dApp library makes at start-up (a strict one refused to boot without the
``plutus:v3`` cost model), chain-sync across a forced rollback, submit, mempool monitoring (issue 16, item 9).

``npm ci`` installs the pinned client into ``ogmios_client_js/node_modules`` the first time (the lock file is
committed; node_modules is not).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import cbor2
from pycardano import PaymentSigningKey

from devnet.ledger.address import address_from_text

CLIENT_DIR = Path(__file__).parent / "ogmios_client_js"
NPM_TIMEOUT_S = 300
SCRIPT_TIMEOUT_S = 120


def _node_modules() -> None:
    if (CLIENT_DIR / "node_modules" / "@cardano-ogmios" / "client" / "package.json").exists():
        return
    npm = shutil.which("npm")
    assert npm is not None, "node and npm are needed (tools/setup-system.sh installs them when missing)"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR, check=True, timeout=NPM_TIMEOUT_S,
                   capture_output=True)


def _ogmios(devnet: Any, method: str, params: dict[str, Any]) -> Any:
    request = urllib.request.Request(devnet.ogmios_http_url, method="POST", data=json.dumps(
        {"jsonrpc": "2.0", "method": method, "params": params, "id": None}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["result"]


def _signed_payment(devnet: Any) -> tuple[str, str]:
    """(CBOR hex, id) of a payment from genesis key 0 to key 1 over its first UTxO, signed."""
    key, other = devnet.genesis_key(0), devnet.genesis_key(1)
    utxo = _ogmios(devnet, "queryLedgerState/utxo", {"addresses": [key["address"]]})[0]
    lovelace, fee = utxo["value"]["ada"]["lovelace"], 400_000
    own = address_from_text(key["address"])
    body = cbor2.dumps({
        0: [[bytes.fromhex(utxo["transaction"]["id"]), utxo["index"]]],
        1: [{0: address_from_text(other["address"]), 1: 2_000_000}, {0: own, 1: lovelace - 2_000_000 - fee}],
        2: fee,
    })
    signing_key = PaymentSigningKey.from_cbor(key["signing_key_cbor"])
    digest = hashlib.blake2b(body, digest_size=32).digest()
    witness = cbor2.dumps({0: [[signing_key.to_verification_key().payload, signing_key.sign(digest)]]})
    return (b"\x84" + body + witness + b"\xf5\xf6").hex(), hashlib.blake2b(body, digest_size=32).hexdigest()


def test_the_official_typescript_client_drives_the_devnet(devnet: Any) -> None:
    _node_modules()
    tx_cbor, tx_id = _signed_payment(devnet)
    env = {**os.environ, "OGMIOS_PORT": str(devnet.ogmios_port), "CONTROL_URL": devnet.control_url,
           "TX_CBOR": tx_cbor, "TX_ID": tx_id, "ADDRESS": devnet.genesis_key(0)["address"]}
    run = subprocess.run(["node", "drive_devnet.mjs"], cwd=CLIENT_DIR, env=env, capture_output=True, text=True,
                         timeout=SCRIPT_TIMEOUT_S, check=False)
    assert run.returncode == 0, f"{run.stderr}\n{run.stdout}\n{devnet.log_text()[-3000:]}"
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["queries"]["plutusV3"] == 251 and summary["queries"]["eraSummaries"] == 7
    assert summary["chainSync"]["rollbacks"] >= 1 and summary["submitted"] == tx_id

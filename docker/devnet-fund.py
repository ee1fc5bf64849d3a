"""One-shot of the compose `devnet` profile: give the treasury ADA and $CREATE on the devnet's first start.

What `make up` does in creatorpass/up.py, over the devnet's control API. A marker file in the devnet's
volume makes a second `docker compose up` a no-op, so no second mint happens.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

INITIAL_CREATE = 1_000_000
INITIAL_LOVELACE = 10_000 * 1_000_000  # fees and min-UTxO for the burner's lanes


def main() -> int:
    address, asset = os.environ.get("FUND_ADDRESS", ""), os.environ.get("FUND_ASSET", "")
    marker = Path(os.environ.get("FUND_MARKER", "/data/funded"))
    if not address or asset.startswith("."):
        print("devnet-fund: TREASURY_ADDRESS and CREATE_POLICY_ID must be set in .env (from `keys show`)",
              file=sys.stderr)
        return 2
    if marker.exists():
        print(f"devnet-fund: already funded ({marker})")
        return 0
    body = json.dumps({"address": address, "lovelace": INITIAL_LOVELACE, "assets": {asset: INITIAL_CREATE}})
    req = urllib.request.Request(f"{os.environ['FUND_CONTROL_URL']}/devnet/fund", data=body.encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        print(f"devnet-fund: {INITIAL_CREATE} {asset} to {address}: HTTP {resp.status}")
    marker.write_text("ok\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

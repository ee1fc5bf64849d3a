"""Fail when the generated stubs in common/rpc are stale (``make proto`` not run after a .proto change)."""

from __future__ import annotations

import filecmp
import sys
import tempfile
from pathlib import Path

from gen_proto import OUT, generate


def stale_files(out: Path = OUT) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "rpc"
        generate(fresh)
        names = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
        names |= {p.relative_to(out) for p in out.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        return sorted(
            str(n) for n in names
            if not (fresh / n).exists() or not (out / n).exists() or not filecmp.cmp(fresh / n, out / n, shallow=False)
        )


if __name__ == "__main__":
    stale = stale_files()
    if stale:
        print("generated stubs are stale; run `make proto`:\n  " + "\n  ".join(stale), file=sys.stderr)
        raise SystemExit(1)
    print("generated stubs are fresh")

"""``python -m tools.up`` is ``creatorpass up`` (kept for scripts that call it by this name)."""

from creatorpass.up import main

if __name__ == "__main__":
    raise SystemExit(main())

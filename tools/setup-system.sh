#!/usr/bin/env bash
# Install the system packages the test suite needs, only those that are missing.
#
#   tools/setup-system.sh            # the default list below
#   tools/setup-system.sh PKG...     # an explicit list (Debian package names)
#
# Idempotent and quiet: a package already installed is never touched, and apt-get runs only
# when something is missing. Works as root on a fresh Debian/Ubuntu machine (CI); as a normal
# user it uses `sudo -n` when that works. When neither is possible it prints which packages are
# missing and exits 0, so the tests that need them skip with their own clear message.
set -euo pipefail

DEFAULT_PACKAGES=(
  softhsm2   # PKCS#11 token for the signer's HSM keystore tests (tests/signer, marker `hsm`)
  chromium   # the studio page's browser tests (tests/e2e: Playwright drives /usr/bin/chromium, never its own)
  postgresql # the PostgreSQL ledger tests start a real server (initdb/postgres from /usr/lib/postgresql/*/bin)
  prometheus # promtool: `make compose-check` runs `promtool check rules docker/alerts.yml` (fails without it)
)

if [[ $# -gt 0 ]]; then
  packages=("$@")
else
  packages=("${DEFAULT_PACKAGES[@]}")
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# Node.js + npm for the official Ogmios TypeScript client test (tests/devnet/test_ogmios_client_js.py).
# Checked by command, not package: a NodeSource install (which bundles npm) counts as present.
if [[ $# -eq 0 ]] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
  missing+=(nodejs npm)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system: apt-get not found; install these packages by hand: ${missing[*]}" >&2
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  runner=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  runner=(sudo -n)
else
  echo "setup-system: not root and no passwordless sudo; skipping. Missing: ${missing[*]}" >&2
  echo "setup-system: tests that need them will be skipped." >&2
  exit 0
fi

echo "setup-system: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${runner[@]}" apt-get update -qq && \
       "${runner[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "setup-system: apt-get failed; its output:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "setup-system: done" >&2

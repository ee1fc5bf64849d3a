#!/bin/sh
# Starts Kupo for the bundle (mounted read-only into the Kupo image, which is busybox).
# It refuses, with the .env variable to set, until the bundle knows what to index and where to start, and
# indexes only the $CREATE policy and our own addresses, so its database stays small.
set -eu

fail() {
  echo "configuration error: $*" >&2
  exit 2
}

[ -n "${KUPO_POLICY_ID:-}" ] || fail "CREATE_POLICY_ID is empty: set it in .env (the policy_id that \`keys show\` prints)"
[ -n "${KUPO_TREASURY_ADDRESS:-}" ] ||
  fail "TREASURY_ADDRESS is empty: set it in .env (the custodial_address that \`keys show\` prints)"
case "${KUPO_SINCE:-}" in
  "") fail "CHAIN_START_POINT is empty: set it in .env to SLOT.BLOCK_HEADER_HASH of a block before the first mint of \$CREATE" ;;
  tip) fail "CHAIN_START_POINT: Kupo cannot start at 'tip'; give SLOT.BLOCK_HEADER_HASH (or origin)" ;;
esac

# The chain source: the operator's node socket when KUPO_NODE_SOCKET is set, otherwise the bundle's Ogmios.
if [ -n "${KUPO_NODE_SOCKET:-}" ]; then
  set -- --node-socket "$KUPO_NODE_SOCKET" --node-config "${KUPO_NODE_CONFIG:?set KUPO_NODE_CONFIG with KUPO_NODE_SOCKET}"
else
  set -- --ogmios-host "${KUPO_OGMIOS_HOST:-ogmios}" --ogmios-port "${KUPO_OGMIOS_PORT:-1337}"
fi
set -- "$@" --host 0.0.0.0 --port 1442 --workdir /db --since "$KUPO_SINCE" --prune-utxo \
  --match "$KUPO_POLICY_ID.*" --match "$KUPO_TREASURY_ADDRESS"
if [ -n "${KUPO_SINK_ADDRESS:-}" ]; then
  set -- "$@" --match "$KUPO_SINK_ADDRESS"
fi
exec "${KUPO_BIN:-/bin/kupo}" "$@"

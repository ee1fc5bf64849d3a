#!/usr/bin/env bash
# cardano-node's container health: the node must answer a local query on its socket. A socket file alone
# proves nothing: one left in the ipc volume by an earlier run stays there after a crash.
set -u
socket=${CARDANO_SOCKET_PATH:-/ipc/node.socket}
if [[ ! -S $socket ]]; then
  echo "starting: no socket at $socket yet (the node opens it once its ledger is loaded)"
  exit 1
fi
genesis=$(< /config/genesis/shelley.json)
magic=${genesis#*\"networkMagic\": }
magic=${magic%%[!0-9]*}
if [[ $magic == 764824073 ]]; then network=(--mainnet); else network=(--testnet-magic "$magic"); fi
if tip=$(cardano-cli query tip --socket-path "$socket" "${network[@]}" 2>&1); then
  echo "$tip"
  exit 0
fi
echo "the node does not answer on $socket (still starting, or a stale socket from an earlier run): $tip"
exit 1

#!/bin/sh
# Ogmios' container health (busybox). Healthy once Ogmios talks to cardano-node; until then it says
# "waiting for node" (the node may be replaying its ledger for hours) rather than only failing.
out=$(wget -q -O - http://127.0.0.1:1337/health 2>&1)
case "$out" in
  *'"connectionStatus":"connected"'*)
    echo "connected to cardano-node"
    exit 0 ;;
  *500* | *'"disconnected"'*)
    echo "waiting for node: Ogmios is up, cardano-node does not answer on its socket yet (starting or replaying its ledger)"
    exit 1 ;;
  *)
    echo "Ogmios does not answer on :1337: $out"
    exit 1 ;;
esac

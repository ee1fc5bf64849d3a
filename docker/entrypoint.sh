#!/bin/sh
# Entrypoint of every creatorpass image, and of its HEALTHCHECK (so `health-check` sees the same settings).
#
# 1. Derives each service's network settings from the bundle's one NETWORK (passed in as
#    CREATORPASS_NETWORK): the signer's network id and clock origin, the indexer's address network, the
#    gateway's network.
#    A value set explicitly that disagrees with NETWORK stops the container.
# 2. Refuses to start while a value the service cannot run without is empty: CREATORPASS_REQUIRED holds
#    space-separated CONTAINER_VAR=ENV_FILE_VAR pairs, and the message names the .env variable to set.
# 3. Runs `python -m $SERVICE "$@"`.
set -eu

fail() {
  echo "configuration error: $*" >&2
  exit 2
}

# derive NAME VALUE: export NAME=VALUE unless NAME is already set to something else.
derive() {
  eval "current=\${$1:-}"
  if [ -n "$current" ] && [ "$current" != "$2" ]; then
    fail "$1=$current disagrees with NETWORK=$CREATORPASS_NETWORK; remove $1 and set only NETWORK in .env"
  fi
  export "$1=$2"
}

# system_start: slot 0 extrapolated at 1-second slots (the signer's clock); preprod's four Byron epochs of
# 20-second slots put it 20 days after its genesis start. Mainnet's is the signer's own default.
case "${CREATORPASS_NETWORK:-}" in
  mainnet) network_id=1 address_network=mainnet system_start="" ;;
  preprod) network_id=0 address_network=testnet system_start=2022-06-20T00:00:00Z ;;
  preview) network_id=0 address_network=testnet system_start=2022-10-25T00:00:00Z ;;
  "") network_id="" address_network="" system_start="" ;;
  *) fail "NETWORK must be mainnet, preprod or preview (set it in .env); got '$CREATORPASS_NETWORK'" ;;
esac
if [ -n "$network_id" ]; then
  derive SIGNER_NETWORK_ID "$network_id"
  derive INDEXER_NETWORK "$address_network"
  derive GATEWAY_NETWORK "$CREATORPASS_NETWORK"
  if [ -n "$system_start" ]; then
    derive SIGNER_SYSTEM_START "$system_start"
  fi
fi

for pair in ${CREATORPASS_REQUIRED:-}; do
  var=${pair%%=*}
  hint=${pair#*=}
  case "$var" in
    "" | *[!A-Z0-9_]*) fail "CREATORPASS_REQUIRED: '$pair' is not CONTAINER_VAR=ENV_FILE_VAR" ;;
  esac
  eval "value=\${$var:-}"
  if [ -z "$value" ]; then
    fail "$var is empty: set $hint in .env (see .env.example and the README, Production bundle)"
  fi
done

exec python -m "${SERVICE:?the image sets SERVICE}" "$@"

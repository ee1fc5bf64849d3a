#!/bin/sh
# Entrypoint of every creatorpass image, and of its HEALTHCHECK (so `health-check` sees the same settings).
#
# 1. Derives each service's network settings from the bundle's one NETWORK (passed in as
#    CREATORPASS_NETWORK): the signer's network id and clock origin, the indexer's address network, the
#    gateway's network; on NETWORK=devnet also the devnet's clock and the gateway's sandbox URLs.
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

DEVNET_SYSTEM_START_UTC=2026-01-01T00:00:00Z

# system_start: slot 0 extrapolated at 1-second slots (the signer's clock); preprod's four Byron epochs of
# 20-second slots put it 20 days after its genesis start. Mainnet's is the signer's own default.
case "${CREATORPASS_NETWORK:-}" in
  mainnet) network_id=1 address_network=mainnet system_start="" ;;
  preprod) network_id=0 address_network=testnet system_start=2022-06-20T00:00:00Z ;;
  preview) network_id=0 address_network=testnet system_start=2022-10-25T00:00:00Z ;;
  # The laptop stack (profile devnet): the devnet's clock is fixed here so that the signer agrees with it.
  devnet) network_id=0 address_network=testnet system_start=$DEVNET_SYSTEM_START_UTC ;;
  "") network_id="" address_network="" system_start="" ;;
  *) fail "NETWORK must be mainnet, preprod, preview or devnet (set it in .env); got '$CREATORPASS_NETWORK'" ;;
esac
if [ "${CREATORPASS_NETWORK:-}" = devnet ]; then
  # The devnet's and the Stripe sandbox's addresses on the compose networks; the browser reaches the sandbox's
  # Stripe.js on its loopback port.
  derive DEVNET_SYSTEM_START "$system_start"
  derive GATEWAY_STRIPE_API_BASE http://stripe-sandbox:12111
  derive GATEWAY_STRIPE_JS_URL http://127.0.0.1:12111/v3/
  derive GATEWAY_DEVNET_CONTROL_URL http://devnet:10000
  # The page as the laptop's browser sees it (the published loopback port), unless .env says otherwise.
  export GATEWAY_PUBLIC_URL="${GATEWAY_PUBLIC_URL:-http://127.0.0.1:8080}"
fi
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

# creatorpass/chain-config: the pinned cardano-node-config/ (every network) and the bundle's chain scripts
# (docker/kupo-start.sh, node-health.sh, ogmios-health.sh), copied by the node stack's init container into
# emptyDirs. A ConfigMap cannot carry them: mainnet's byron genesis alone is over 1 MiB.
#   docker build -f deploy/k8s/images/chain-config.Dockerfile -t creatorpass/chain-config:0.1.0 .
FROM busybox:1.37.0
COPY cardano-node-config /opt/creatorpass/cardano-node-config
COPY docker/kupo-start.sh docker/node-health.sh docker/ogmios-health.sh /opt/creatorpass/bin/
USER 10020:10020

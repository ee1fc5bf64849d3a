"""creatorpass indexer: the appliance's only road to the chain (Ogmios chain-sync + Kupo, served over gRPC)."""

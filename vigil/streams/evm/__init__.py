"""EVM chain ingestion: JSON-RPC, record normalization, the block ingester."""

"""History in ClickHouse: versioned DDL, the batching sink, read-only queries."""

"""Connectors: side effects (notifications) and sinks (ClickHouse history)."""

"""Processors: the decisions made on the stream (conditions, matching)."""

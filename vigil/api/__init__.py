"""The HTTP API: schema registry endpoints, read-only SQL, health."""

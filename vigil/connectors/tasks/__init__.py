"""User tasks: the sandboxed runner, the run protocol, and (to come) kv and secrets."""

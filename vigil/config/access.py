"""API keys: what a key may do (scopes), how its secret is made, and the record kept of it.

A key reads ``vigil_<id>_<secret>``: ``id`` names it in listings and revocations, the secret
is 256 random bits. Only the SHA-256 of the whole key is kept. A fast hash is enough here, as
for GitHub's tokens: nobody guesses 256 random bits, so there is no password to stretch.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import re
import secrets

from pydantic import BaseModel, ConfigDict, Field

from vigil.config.models import ID
from vigil.errors import ConfigError

SCOPES: dict[str, str] = {
    "sql:read": "POST /sql: read-only SQL over the history",
    "monitors:read": "GET /monitors and /channels: what is applied, and what is paused",
    "monitors:write": "PUT and DELETE /monitors/{id} and /channels/{id}; pause and resume",
    "deliveries:read": "GET /deliveries: the latest deliveries and their outcome",
    "deliveries:write": "POST /deliveries/{id}/resend: send a failed delivery again",
    "registry:read": "GET the schema registry (subscribers' Avro deserializers)",
    "registry:write": "POST schemas to the registry (vigil's own processes)",
    "tasks:read": "GET /tasks: the applied tasks",
    "tasks:write": "PUT and DELETE /tasks/{id}; POST /tasks/{id}/webhook (a new URL)",
    "tasks:run": "POST /tasks/{id}/runs: run any task by hand (tasks:run:<id>: that task only)",
    "secrets:write": "GET /secrets (names only), PUT and DELETE /secrets/{name}",
    "relayers:read": "GET /relayers/summary, /relayers/{id} and its keys (never a secret)",
    "relayers:write": "POST and PUT /relayers; POST and DELETE /relayers/{id}/keys",
    "status:read": "GET /health with the instance, data dir and history counts",
    "metrics:read": "GET /metrics: Prometheus metrics of the API process",
    # what a task run may do, when it runs as a key (run_as in the task's file, or the
    # caller's key for a run by hand through the API)
    "kv:read": "task runs: context.kv.get",
    "kv:write": "task runs: context.kv.put and del",
    "notify:send": "task runs: context.notify.send and send_metric",
    "relayer:send": "task runs: context.relayer (send, sign, query…)",
}
RUN = "tasks:run"  # also given per task: tasks:run:<task id>
RELAY = "relay"  # a relayer key's one scope, relay:<relayer id>: the Relay Signer routes
ALL = "*"  # every scope: the stack's own key, and `vigil keys create --scope '*'`
KEY_FORMAT = re.compile(r"^vigil_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")


class ApiKey(BaseModel):
    """One key as kept on the keys topic: never its secret, only the secret's hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str = Field(pattern=r"^[0-9a-f]{12}$")
    name: str = Field(min_length=1, max_length=100)
    scopes: tuple[str, ...]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_ms: int
    revoked_ms: int | None = None

    def allows(self, scope: str) -> bool:
        """Whether the key holds ``scope``; ``tasks:run`` holds every ``tasks:run:<id>``."""
        if self.revoked_ms is not None:
            return False
        wider = scope.rsplit(":", 1)[0] if scope.startswith(f"{RUN}:") else None
        return ALL in self.scopes or scope in self.scopes or wider in self.scopes

    def matches(self, key: str) -> bool:
        """Whether ``key`` is this key's secret (constant-time)."""
        return hmac.compare_digest(self.sha256, digest(key))


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id part of a well-formed key; None for anything else."""
    found = KEY_FORMAT.match(key)
    return found.group(1) if found else None


def new_key(name: str, scopes: list[str], created_ms: int) -> tuple[str, ApiKey]:
    """A fresh secret key (shown once) and the record that keeps its hash."""
    key_id = secrets.token_hex(6)
    key = f"vigil_{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        key_id=key_id,
        name=name,
        scopes=tuple(check_scopes(scopes)),
        sha256=digest(key),
        created_ms=created_ms,
    )
    return key, record


def check_scopes(scopes: list[str]) -> list[str]:
    """``scopes`` without repeats, or a ConfigError naming the first unknown one."""
    if not scopes:
        raise ConfigError(f"expected at least one --scope: {', '.join(SCOPES)} or '{ALL}'")
    for scope in scopes:
        if scope.startswith(f"{RUN}:") and ID.match(scope.removeprefix(f"{RUN}:")):
            continue
        if scope.startswith(f"{RELAY}:") and ID.match(scope.removeprefix(f"{RELAY}:")):
            continue
        if scope != ALL and scope not in SCOPES:
            close = difflib.get_close_matches(scope, list(SCOPES), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(
                f"--scope: unknown scope {scope!r}; {hint}known: {', '.join(SCOPES)} or '{ALL}'"
            )
    return list(dict.fromkeys(scopes))

"""Exceptions raised by vigil.

The tree::

    VigilError                  root; every error vigil raises on purpose
    ├── SettingsError           bad or missing environment settings
    ├── ConfigError             a project file (vigil.yaml, monitors/, channels/) is wrong
    │   └── ConditionError      a condition expression does not parse or names unknown fields
    ├── ConditionTypeError      a condition met operands it cannot compare: counted as no match
    ├── SchemaError             an Avro schema or the registry is wrong or unreachable
    │   └── SerializationError  a record could not be encoded or decoded
    ├── RuntimeDependencyError  java, the Kafka jars or anvil are missing
    ├── BrokerError             the Kafka broker could not start or be reached
    ├── RpcError                a JSON-RPC endpoint failed or answered nonsense
    │   ├── RpcUnavailable      transport error, timeout, 429, 5xx, unreadable reply: retry
    │   └── RpcReplyError       the node answered a JSON-RPC error object: do not retry
    ├── ReorgTooDeep            a reorg reaches below the remembered window: repair by hand
    ├── HistoryError            ClickHouse refused a statement
    ├── NotFound                a named object (monitor, dead letter, query) does not exist
    ├── ConflictError           the object exists, but its state forbids the change asked
    └── DeliveryError           a notification could not be delivered
"""

from __future__ import annotations


class VigilError(Exception):
    """Root of every error vigil raises on purpose."""


class SettingsError(VigilError):
    """An environment setting is missing or invalid."""


class ConfigError(VigilError):
    """A project file is invalid; the message names file, object and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        obj: str | None = None,
        field: str | None = None,
    ) -> None:
        where = ": ".join(part for part in (file, obj, field) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.obj, self.field = file, obj, field


class ConditionError(ConfigError):
    """A condition expression is invalid (syntax, or a name the ABI lacks)."""


class ConditionTypeError(VigilError):
    """Operands of incompatible types met at evaluation; the caller counts it as no match."""


class SchemaError(VigilError):
    """An Avro schema, the catalogue or the schema registry is wrong or unreachable."""


class SerializationError(SchemaError):
    """A record could not be encoded or decoded."""


class RuntimeDependencyError(VigilError):
    """A program or file vigil runs (java, Kafka jars, anvil) is missing."""


class BrokerError(VigilError):
    """The Kafka broker could not be started or reached."""


class RpcError(VigilError):
    """A JSON-RPC endpoint failed, timed out, or answered something unexpected."""


class RpcUnavailable(RpcError):
    """The endpoint could not answer now (transport, timeout, 429, 5xx, bad body): retryable."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RpcReplyError(RpcError):
    """The node answered with a JSON-RPC error for ``method``; retrying will not help."""

    def __init__(self, message: str, *, method: str, code: int | None) -> None:
        super().__init__(message)
        self.method, self.code = method, code


class ReorgTooDeep(VigilError):
    """The node's chain differs from every block in the ingester's window; vigil will not
    guess the fork, so the network stops until ``vigil backfill --reorg`` repairs it."""


class HistoryError(VigilError):
    """ClickHouse refused a statement."""


class NotFound(VigilError):
    """A named object (an applied monitor, a dead letter, a ready-made query) does not exist."""


class ConflictError(VigilError):
    """The object exists, but its state forbids the change asked (a mined transaction
    replaced)."""


class DeliveryError(VigilError):
    """A notification could not be delivered."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.permanent, self.retry_after = status, permanent, retry_after

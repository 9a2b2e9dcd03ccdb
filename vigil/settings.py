"""Settings: the one frozen object built from ``VIGIL_*`` environment variables."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError as PydanticSettingsError

from vigil.errors import SettingsError

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything vigil reads from the environment; only this module reads it."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", frozen=True, extra="ignore")

    data_dir: Path = Field(default=Path(".vigil"), description="state: broker log, ClickHouse")
    project_dir: Path = Field(default=Path("examples"), description="vigil.yaml, monitors/...")
    kafka_bootstrap: str | None = Field(
        default=None, description="host:port,...; absent = start the embedded KRaft broker"
    )
    kafka_port: int = Field(default=0, ge=0, le=65535, description="embedded broker; 0 = free")
    kafka_home: Path = Field(
        default=REPO_ROOT / ".tools" / "kafka", description="folder of the Kafka broker jars"
    )
    java: str = Field(default="java", description="java executable for the embedded broker")
    clickhouse_dsn: str | None = Field(
        default=None, description="http(s)://host:8123/db or chdb:///path; absent = chDB"
    )
    clickhouse_database: str = Field(default="vigil", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    schema_registry_url: str | None = Field(
        default=None, description="external Confluent-compatible registry; absent = vigil's"
    )
    api_bind: str = Field(default="127.0.0.1:8420", description="host:port of vigil's API")
    worker_metrics_bind: str = Field(
        default="127.0.0.1:8421", description="host:port of `vigil worker`'s /metrics"
    )
    ingest_metrics_bind: str = Field(
        default="127.0.0.1:8422", description="host:port of `vigil ingest`'s /metrics"
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="the stack's own API key (every scope), presented by vigil's processes and "
        "CLI; absent = the key `vigil up` keeps in the data dir",
    )
    topic_prefix: str = Field(default="vigil", pattern=r"^[A-Za-z0-9._-]+$")
    group_prefix: str = Field(default="vigil", pattern=r"^[A-Za-z0-9._-]+$")
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description='JSON object {"name": "value"} of channel secrets'
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        description="the operator's key that seals the secrets `vigil secrets set` keeps "
        "(32 bytes, base64url; `vigil secrets new-key`)",
    )
    route_secret: SecretStr | None = Field(
        default=None,
        description="the server secret task sink routes are signed with (absent: one kept in "
        "the data dir); a new one invalidates every route",
    )
    tick_interval: float = Field(
        default=60.0, ge=1, le=3600, description="seconds between the scheduler's ticks"
    )
    task_webhook_wait: float = Field(
        default=25.0, gt=0, le=300, description="seconds a task webhook waits before 'pending'"
    )
    relayer_resubmit: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="seconds a relayer transaction may wait unmined before it is sent again "
        "with a higher fee",
    )
    relayer_poll: float = Field(
        default=1.0, gt=0, le=60, description="seconds between a relayer owner's chain checks"
    )
    history_batch_rows: int = Field(
        default=50_000, ge=1, description="the history sink inserts once this many records came"
    )
    history_batch_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="... or this many seconds after a batch's first record (ClickHouse wants "
        "few, large inserts)",
    )
    history_ttl_days: dict[str, int] = Field(
        default_factory=dict,
        description='JSON object {"table": days}: history rows older than this go, at merges '
        '(e.g. {"logs": 90, "transactions": 365}); absent = kept for ever',
    )
    task_kv_max_items: int = Field(
        default=10_000, ge=1, description="items the tasks' key-value store may hold"
    )
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # third-party API base URLs: settings, so a proxy (or a test's local server) can stand in
    telegram_api_url: str = Field(default="https://api.telegram.org")
    datadog_api_url: str | None = Field(default=None, description="absent: https://api.<site>")
    pagerduty_api_url: str = Field(default="https://events.pagerduty.com")
    opsgenie_api_url: str | None = Field(default=None, description="absent: by instance US/EU")
    forta_scan_nodes: str = Field(
        default="", description="comma-separated addresses of Local Mode scan nodes to trust"
    )
    forta_webhook_token: SecretStr | None = Field(
        default=None, description="a shared bearer token for Local Mode, instead of scan nodes"
    )
    forta_clock_skew: float = Field(
        default=30.0, ge=0, le=300, description="seconds of clock skew allowed on scan-node JWTs"
    )
    restart_limit: int = Field(
        default=5, ge=1, description="vigil up: this many crashes of a child within"
    )
    restart_window: float = Field(
        default=120.0, gt=0, description="... this many seconds is a crash loop: stop the stack"
    )
    rpc_start_wait: float = Field(
        default=30.0, ge=0, description="vigil up: seconds to retry an unreachable node at start"
    )
    worker_commit_interval: float = Field(
        default=1.0, gt=0, description="seconds between the worker's offset commits"
    )
    email_bind: str | None = Field(
        default=None,
        pattern=r"^[^:]+:\d+$",
        description="host:port of the SMTP ingress of task e-mail triggers (vigil serve); "
        "off when unset",
    )
    sourcify_url: str = Field(
        default="https://sourcify.dev/server", description="Sourcify's API, for ABI fetching"
    )
    kafka_security_protocol: str = Field(
        default="PLAINTEXT",
        pattern=r"^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$",
        description="how every Kafka client of vigil connects: PLAINTEXT, SSL, SASL_PLAINTEXT, "
        "SASL_SSL",
    )
    kafka_sasl_mechanism: str = Field(
        default="SCRAM-SHA-512",
        pattern=r"^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$",
        description="SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL_*: the user")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL_*: its password")
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="SSL, SASL_SSL: CA bundle (PEM) that signed the brokers' certs"
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="SSL: this client's certificate (PEM), for mutual TLS"
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="SSL: this client's private key (PEM), for mutual TLS"
    )
    kafka_partitions: int = Field(
        default=3,
        ge=1,
        le=256,
        description="partitions of the topics work spreads over (blocks, matches, deliveries…); "
        "set before the first start: Kafka can add partitions, not move records",
    )
    kafka_replication_factor: int = Field(
        default=1, ge=1, le=10, description="replicas of every topic vigil creates"
    )
    kafka_min_insync_replicas: int = Field(
        default=1, ge=1, le=10, description="min.insync.replicas of every topic vigil creates"
    )
    sql_max_execution_time: float = Field(
        default=30.0, gt=0, le=3600, description="users' SQL: seconds a query may run"
    )
    sql_max_memory_usage: int = Field(
        default=2_000_000_000, ge=10_000_000, description="users' SQL: bytes a query may use"
    )
    sql_max_result_rows: int = Field(
        default=100_000, ge=1, description="users' SQL: rows a result may hold"
    )

    @model_validator(mode="after")
    def _kafka_security(self) -> Settings:
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            for field in ("kafka_sasl_username", "kafka_sasl_password"):
                if not getattr(self, field):
                    raise ValueError(
                        f"VIGIL_{field.upper()} is required with "
                        f"VIGIL_KAFKA_SECURITY_PROTOCOL={protocol}"
                    )
        for field in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
            path = getattr(self, field)
            if path is not None and not path.is_file():
                raise ValueError(f"VIGIL_{field.upper()}: no such file {str(path)!r}")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("VIGIL_KAFKA_SSL_CERTFILE and VIGIL_KAFKA_SSL_KEYFILE go together")
        return self

    @property
    def kafka_options(self) -> dict[str, str]:
        """The security options of every kafka-python client (admin, producers, consumers);
        streams.app gives Faust's aiokafka the same as credentials."""
        options = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL_"):
            assert self.kafka_sasl_username and self.kafka_sasl_password  # the validator's
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        for name, path in (
            ("ssl_cafile", self.kafka_ssl_cafile),
            ("ssl_certfile", self.kafka_ssl_certfile),
            ("ssl_keyfile", self.kafka_ssl_keyfile),
        ):
            if path is not None:
                options[name] = str(path.resolve())
        return options

    @property
    def sql_limits(self) -> dict[str, float | int | str]:
        """The ClickHouse settings every query from a user runs under (readonly keeps them)."""
        return {
            "max_execution_time": self.sql_max_execution_time,
            "max_memory_usage": self.sql_max_memory_usage,
            "max_result_rows": self.sql_max_result_rows,
            "result_overflow_mode": "throw",
        }

    @field_validator("api_bind", "worker_metrics_bind", "ingest_metrics_bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port such as 127.0.0.1:8420, got {value!r}")
        return value

    @field_validator("history_ttl_days")
    @classmethod
    def _ttl(cls, value: dict[str, int]) -> dict[str, int]:
        for table, days in value.items():
            if not 1 <= days <= 36_500:
                raise ValueError(f"expected days from 1 to 36500 for {table!r}, got {days}")
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value.strip()

    @field_validator("forta_scan_nodes")
    @classmethod
    def _scan_nodes(cls, value: str) -> str:
        for address in filter(None, (a.strip() for a in value.split(","))):
            if len(address) != 42 or not address.startswith("0x"):
                raise ValueError(f"expected 0x-prefixed 40-hex-digit addresses, got {address!r}")
        return value

    @property
    def scan_nodes(self) -> frozenset[str]:
        """The Local Mode scan node addresses, lower case."""
        return frozenset(a.strip().lower() for a in self.forta_scan_nodes.split(",") if a.strip())

    @property
    def clickhouse(self) -> str:
        """The ClickHouse DSN in force."""
        return self.clickhouse_dsn or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def api_url(self) -> str:
        """Base URL of this installation's API (schema registry, SQL)."""
        return f"http://{self.api_bind}"

    @property
    def registry_url(self) -> str:
        """The schema registry in force: external if configured, else vigil's own API."""
        return (self.schema_registry_url or self.api_url).rstrip("/")

    def reference(self, name: str) -> str | None:
        """The value a ``${NAME}`` in a project file stands for: the secret ``NAME`` of
        VIGIL_SECRETS, else the environment variable ``NAME``; None when neither is set."""
        secret = self.secrets.get(name)
        if secret is not None:
            return secret.get_secret_value()
        return os.environ.get(name)

    def child_env(self) -> dict[str, str]:
        """These settings as ``VIGIL_*`` variables, for the processes `vigil up` starts."""
        env = {
            "VIGIL_DATA_DIR": str(self.data_dir.resolve()),
            "VIGIL_PROJECT_DIR": str(self.project_dir.resolve()),
            "VIGIL_KAFKA_HOME": str(self.kafka_home),
            "VIGIL_JAVA": self.java,
            "VIGIL_API_BIND": self.api_bind,
            "VIGIL_WORKER_METRICS_BIND": self.worker_metrics_bind,
            "VIGIL_INGEST_METRICS_BIND": self.ingest_metrics_bind,
            "VIGIL_TOPIC_PREFIX": self.topic_prefix,
            "VIGIL_GROUP_PREFIX": self.group_prefix,
            "VIGIL_LOG_LEVEL": self.log_level,
            "VIGIL_CLICKHOUSE_DATABASE": self.clickhouse_database,
            "VIGIL_TELEGRAM_API_URL": self.telegram_api_url,
            "VIGIL_PAGERDUTY_API_URL": self.pagerduty_api_url,
            "VIGIL_WORKER_COMMIT_INTERVAL": str(self.worker_commit_interval),
            "VIGIL_RPC_START_WAIT": str(self.rpc_start_wait),
            "VIGIL_KAFKA_PARTITIONS": str(self.kafka_partitions),
            "VIGIL_KAFKA_REPLICATION_FACTOR": str(self.kafka_replication_factor),
            "VIGIL_KAFKA_MIN_INSYNC_REPLICAS": str(self.kafka_min_insync_replicas),
            "VIGIL_KAFKA_SECURITY_PROTOCOL": self.kafka_security_protocol,
            "VIGIL_KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "VIGIL_TASK_KV_MAX_ITEMS": str(self.task_kv_max_items),
            "VIGIL_TICK_INTERVAL": str(self.tick_interval),
            "VIGIL_TASK_WEBHOOK_WAIT": str(self.task_webhook_wait),
            "VIGIL_RELAYER_RESUBMIT": str(self.relayer_resubmit),
            "VIGIL_RELAYER_POLL": str(self.relayer_poll),
            "VIGIL_SQL_MAX_EXECUTION_TIME": str(self.sql_max_execution_time),
            "VIGIL_SQL_MAX_MEMORY_USAGE": str(self.sql_max_memory_usage),
            "VIGIL_SQL_MAX_RESULT_ROWS": str(self.sql_max_result_rows),
            "VIGIL_FORTA_SCAN_NODES": self.forta_scan_nodes,
            "VIGIL_FORTA_CLOCK_SKEW": str(self.forta_clock_skew),
            "VIGIL_SECRETS": json.dumps({k: v.get_secret_value() for k, v in self.secrets.items()}),
        }
        for name, value in (
            ("VIGIL_KAFKA_BOOTSTRAP", self.kafka_bootstrap),
            ("VIGIL_CLICKHOUSE_DSN", self.clickhouse_dsn),
            ("VIGIL_SCHEMA_REGISTRY_URL", self.schema_registry_url),
            ("VIGIL_DATADOG_API_URL", self.datadog_api_url),
            ("VIGIL_OPSGENIE_API_URL", self.opsgenie_api_url),
            ("VIGIL_API_KEY", self.api_key.get_secret_value() if self.api_key else None),
            (
                "VIGIL_SECRETS_KEY",
                self.secrets_key.get_secret_value() if self.secrets_key else None,
            ),
            (
                "VIGIL_ROUTE_SECRET",
                self.route_secret.get_secret_value() if self.route_secret else None,
            ),
            ("VIGIL_KAFKA_SASL_USERNAME", self.kafka_sasl_username),
            (
                "VIGIL_KAFKA_SASL_PASSWORD",
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None,
            ),
            ("VIGIL_KAFKA_SSL_CAFILE", _resolved(self.kafka_ssl_cafile)),
            ("VIGIL_KAFKA_SSL_CERTFILE", _resolved(self.kafka_ssl_certfile)),
            ("VIGIL_KAFKA_SSL_KEYFILE", _resolved(self.kafka_ssl_keyfile)),
            (
                "VIGIL_FORTA_WEBHOOK_TOKEN",
                self.forta_webhook_token.get_secret_value() if self.forta_webhook_token else None,
            ),
        ):
            if value:
                env[name] = value
        return env

    def topic(self, suffix: str) -> str:
        """Full topic name for a catalogue suffix such as ``chain.blocks``."""
        return f"{self.topic_prefix}.{suffix}"

    def group(self, role: str) -> str:
        """Consumer group id for a role such as ``history``."""
        return f"{self.group_prefix}-{role}"


def _resolved(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None


def load_settings(**overrides: object) -> Settings:
    """Build the settings at an entry point; errors name the variable and what was wrong."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # pydantic validates the values
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a rule over several settings: its message names them
                problems.append(err["msg"].removeprefix("Value error, "))
                continue
            field = str(err["loc"][0])
            # a secret's value never reaches a message, not even when it is wrong
            secret = field in (
                "secrets",
                "forta_webhook_token",
                "api_key",
                "kafka_sasl_password",
                "secrets_key",
                "route_secret",
            )
            shown = "" if secret else f" (got {err.get('input')!r})"
            problems.append(f"VIGIL_{field.upper()}: {err['msg']}{shown}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
    except PydanticSettingsError as exc:  # a complex value that is not JSON
        field = str(exc).split('"')[1] if '"' in str(exc) else "?"
        raise SettingsError(
            f'invalid settings: VIGIL_{field.upper()}: expected JSON such as {{"name": "value"}}'
        ) from None

"""Pydantic models of the project files; field names are the public file format."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from eth_utils.address import to_checksum_address
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from vigil.config.channels import MessageTemplate
from vigil.config.urls import REFERENCE, redact

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_ALIAS = r"^[a-z0-9][a-z0-9_-]*$"
ID = re.compile(_ALIAS)  # ids and aliases: lowercase letters, digits, - and _


def _address(value: str) -> str:
    """An address, lower case. Mixed case must be its EIP-55 checksum: a wrong case means
    a mistyped digit somewhere, and vigil would silently watch another address."""
    if not _ADDRESS.match(value):
        raise ValueError(f"expected a 0x-prefixed 40-hex-digit address, got {value!r}")
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper():
        checksummed = to_checksum_address(value)
        if checksummed != value:
            raise ValueError(
                f"{value} is not an EIP-55 checksummed address (a digit or its case is wrong); "
                f"its checksummed form is {checksummed}: check the address, then write that "
                "or all lower case"
            )
    return value.lower()


Address = Annotated[str, AfterValidator(_address)]
CONTRACT_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")  # an address book entry (never 0x…)


def _address_or_name(value: str) -> str:
    """An address, or the name of a contract of the project's address book (resolved when
    the project loads)."""
    if isinstance(value, str) and CONTRACT_NAME.match(value):
        return value
    return _address(value)


AddressOrName = Annotated[str, AfterValidator(_address_or_name)]


def _restore_hex(addresses: Any) -> Any:
    """YAML reads an unquoted 0x... as an integer; an address is 160 bits, so padding back
    to 40 hex digits restores it exactly."""
    if isinstance(addresses, list):
        return [f"0x{a:040x}" if isinstance(a, int) and 0 <= a < 2**160 else a for a in addresses]
    return addresses


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _rpc_url(url: str) -> str:
    if not url.startswith(("http://", "https://", "${")):
        raise ValueError(f"expected an http(s):// JSON-RPC URL, got {redact(url)!r}")
    if "$" in REFERENCE.sub("", url):
        raise ValueError("a reference is written ${NAME}: letters, digits and _")
    return url


_RPC_URLS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "anyOf": [
            {"type": "string", "description": "an http(s):// URL of weight 1; ${NAME} for keys"},
            {
                "type": "object",
                "properties": {
                    "url": {"type": "string"},
                    "weight": {"type": "integer", "minimum": 1},
                },
                "required": ["url"],
                "additionalProperties": False,
            },
        ]
    },
}


class RpcEndpoint(_Model):
    """One JSON-RPC endpoint; a higher weight is tried first."""

    url: Annotated[str, AfterValidator(_rpc_url)]
    weight: int = Field(default=1, ge=1)


class AbiSource(_Model):
    """Where a network's verified ABIs come from: Sourcify (``url`` default
    VIGIL_SOURCIFY_URL), or an Etherscan-compatible API with its key as a named secret."""

    type: Literal["sourcify", "etherscan"]
    url: str | None = Field(
        default=None, description="etherscan: default https://api.etherscan.io/v2/api"
    )
    api_key_secret: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")

    @model_validator(mode="after")
    def _etherscan_key(self) -> AbiSource:
        if self.type == "etherscan":
            if not self.api_key_secret:
                raise ValueError("an etherscan source needs api_key_secret (a secret's name)")
            if self.url is None:
                return self.model_copy(update={"url": "https://api.etherscan.io/v2/api"})
        return self


class NetworkConfig(_Model):
    """One chain vigil ingests."""

    chain_id: int = Field(gt=0)
    rpc_urls: Annotated[list[RpcEndpoint], WithJsonSchema(_RPC_URLS_SCHEMA)] = Field(min_length=1)
    poll_interval: float = Field(default=2.0, gt=0)
    start_block: int | Literal["latest"] = "latest"
    confirmations: int | Literal["safe", "finalized"] = Field(
        default=0, description="emit a block once this many blocks follow it, or at the tag"
    )
    batch_size: int = Field(default=10, ge=1, le=1000, description="blocks fetched per batch")
    max_catch_up: int = Field(default=500, ge=1, description="blocks emitted per poll at most")
    reorg_window: int = Field(default=128, ge=2, le=10_000, description="recent hashes kept")
    explorer_url: str | None = Field(
        default=None, description="e.g. https://etherscan.io/tx/{hash}"
    )
    private_rpc_urls: Annotated[list[RpcEndpoint], WithJsonSchema(_RPC_URLS_SCHEMA)] = Field(
        default_factory=list,
        description="where relayers send isPrivate transactions (e.g. Flashbots Protect, "
        "https://rpc.flashbots.net); none: private transactions are refused",
    )
    traces: bool = Field(
        default=False,
        description="fetch each block's call traces (debug_traceBlockByNumber with the "
        "callTracer, else trace_block): function conditions then match internal calls too",
    )
    abi_sources: list[AbiSource] = Field(
        default_factory=lambda: [AbiSource(type="sourcify")],
        description="where `vigil validate` and `apply` fetch the ABI of a monitor that gives "
        "none (verified contracts), in order",
    )
    spread: bool = Field(
        default=False,
        description="key this network's blocks by number, so one busy chain spreads over "
        "every worker; a monitor's notifications may then arrive out of block order (its "
        "threshold and timeout count them as they arrive)",
    )

    @field_validator("rpc_urls", "private_rpc_urls", mode="before")
    @classmethod
    def _plain_urls(cls, urls: Any) -> Any:
        # a plain string is an endpoint of weight 1
        if isinstance(urls, list):
            return [{"url": u} if isinstance(u, str) else u for u in urls]
        return urls

    @field_validator("confirmations")
    @classmethod
    def _confirmations(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"expected 0 or more blocks, safe or finalized, got {value}")
        return value


class Selection(_Model):
    """An event or function chosen by signature (or unambiguous name), with a condition."""

    signature: str = Field(min_length=1)
    expression: str | None = None


class EventCondition(Selection):
    """conditions.events[]"""


class FunctionCondition(Selection):
    """conditions.functions[]"""


class Conditions(_Model):
    transaction: str | None = None
    events: list[EventCondition] = Field(default_factory=list)
    functions: list[FunctionCondition] = Field(default_factory=list)


class Threshold(_Model):
    """Notify only once ``amount`` matches fall within ``window_seconds`` (sliding)."""

    amount: int = Field(ge=1)
    window_seconds: int = Field(ge=1)


class _MonitorBase(_Model):
    """What every monitor has: identity, routing, rate limits, message, pause."""

    name: str = Field(min_length=1)
    id: str | None = Field(default=None, pattern=_ALIAS)
    severity: Literal["high", "medium", "low"] = "medium"
    risk_category: (
        Literal["governance", "access-control", "suspicious", "financial", "technical"] | None
    ) = None
    channels: list[str] = Field(
        default_factory=list, description="aliases; absent: the project's defaults for severity"
    )
    tasks: list[Annotated[str, Field(pattern=_ALIAS)]] = Field(
        default_factory=list,
        description="task ids run with each block's matches (a task id in channels also runs)",
    )
    filter: str | None = Field(
        default=None,
        description="custom filter: a task id, or a task file or folder relative to this file "
        "(./filters/big.py); the block's matches go to it in batches of 25, and only the "
        "hashes it returns stay matched",
    )
    threshold: Threshold | None = None
    timeout_seconds: int = Field(default=0, ge=0, description="least seconds between notices")
    message: MessageTemplate | None = None
    paused: bool = False

    @property
    def filter_path(self) -> str | None:
        """``filter`` when it names a file or folder (not a task id)."""
        if self.filter is None or ID.match(self.filter):
            return None
        return self.filter

    @field_validator("addresses", mode="before", check_fields=False)
    @classmethod
    def _unquoted_hex(cls, addresses: Any) -> Any:
        return _restore_hex(addresses)


class MonitorConfig(_MonitorBase):
    """A contract monitor (monitors/*.yaml)."""

    type: Literal["contract"] = "contract"
    network: str
    addresses: list[AddressOrName] = Field(
        min_length=1, description="addresses, or names of contracts in vigil.yaml's contracts"
    )
    abi: str | list[dict[str, Any]] | None = None
    confirm_blocks: int | Literal["safe", "finalized"] = 0
    conditions: Conditions = Field(default_factory=Conditions)


_BOT_ID = re.compile(r"^0x[0-9a-fA-F]{64}$")


def _bot_id(value: str) -> str:
    if not _BOT_ID.match(value):
        raise ValueError(f"expected a 0x-prefixed 64-hex-digit bot id, got {value!r}")
    return value.lower()


BotId = Annotated[str, AfterValidator(_bot_id)]
FortaSeverity = Literal["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


class FortaMonitorConfig(_MonitorBase):
    """A Forta monitor (monitors/*.yaml with ``type: forta``): alerts from bots or addresses."""

    type: Literal["forta"]
    network: str | None = Field(default=None, description="a vigil.yaml network, if any")
    bot_ids: list[BotId] = Field(default_factory=list)
    addresses: list[Address] = Field(default_factory=list)
    scan_node: Address | None = Field(default=None, description="Local Mode: the scan node")
    alert_ids: list[str] = Field(default_factory=list)
    min_severity: Annotated[
        FortaSeverity | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "string",
                        "description": "any case of " + ", ".join(get_args(FortaSeverity)),
                    },
                ]
            }
        ),
    ] = None
    min_scanner_count: int = Field(default=1, ge=1)

    @field_validator("min_severity", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _a_source(self) -> FortaMonitorConfig:
        if not (self.bot_ids or self.addresses or self.scan_node):
            raise ValueError("give bot_ids and/or addresses (or scan_node for Local Mode)")
        if self.scan_node and self.bot_ids:
            raise ValueError("a Local Mode monitor (scan_node) filters by scan node, not bot_ids")
        return self


class FortaApiConfig(_Model):
    """One source of alerts from the Forta GraphQL API (vigil.yaml ``forta_api``)."""

    name: str = Field(pattern=_ALIAS)
    url: str = "https://api.forta.network/graphql"
    api_key_secret: str | None = Field(default=None, description="secret holding the API key")
    bot_ids: list[str] = Field(default_factory=list)
    addresses: list[Address] = Field(default_factory=list)
    chain_id: int | None = Field(default=None, gt=0)
    poll_interval: float = Field(default=30.0, gt=0)
    page_size: int = Field(default=100, ge=1, le=5000)
    lookback_seconds: int = Field(default=3600, ge=0, description="first poll only")
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _rpc_url(url)

    @field_validator("bot_ids")
    @classmethod
    def _bots(cls, bots: list[str]) -> list[str]:
        for bot in bots:
            if not re.match(r"^0x[0-9a-fA-F]{64}$", bot):
                raise ValueError(f"expected 0x-prefixed 64-hex-digit bot ids, got {bot!r}")
        return [b.lower() for b in bots]


class SeverityRoutes(_Model):
    """Channel aliases for monitors that name none, by their severity."""

    high: list[str] = Field(default_factory=list)
    medium: list[str] = Field(default_factory=list)
    low: list[str] = Field(default_factory=list)


class ScheduleConfig(_Model):
    """When a task runs by itself: ``every`` (90s, 5m, 2h; at least a minute), ``cron``
    (five fields, UTC) or once ``at`` a time (ISO 8601 with its zone). Matched against the
    scheduler's ticks (VIGIL_TICK_INTERVAL)."""

    every: str | None = Field(default=None, pattern=r"^\d+[smh]$", description="e.g. 5m")
    cron: str | None = Field(default=None, description="e.g. */15 * * * * (UTC)")
    at: AwareDatetime | None = Field(default=None, description="once: 2026-12-01T09:00:00Z")

    @model_validator(mode="after")
    def _one(self) -> ScheduleConfig:
        if sum(x is not None for x in (self.every, self.cron, self.at)) != 1:
            raise ValueError(
                "give one of every (such as 5m), cron (such as */5 * * * *) "
                "or at (such as 2026-12-01T09:00:00Z)"
            )
        if self.every is not None and self.seconds < 60:
            raise ValueError(f"every: at least 1 minute, got {self.every}")
        if self.cron is not None:
            from croniter import croniter

            if len(self.cron.split()) != 5 or not croniter.is_valid(self.cron):
                raise ValueError(f"cron: not a five-field cron expression: {self.cron!r}")
        return self

    @property
    def seconds(self) -> int:
        """``every`` in seconds (0 for a cron schedule)."""
        if self.every is None:
            return 0
        return int(self.every[:-1]) * {"s": 1, "m": 60, "h": 3600}[self.every[-1]]


class HookConfig(_Model):
    """A task bound to vigil's own operation, ``notify`` (a notification about to be sent),
    ``apply`` (monitor and channel changes about to be published) or ``relay`` (a relayer
    transaction about to be signed): ``before`` it (synchronous: it may replace the payload,
    or abort the operation by raising) or ``after`` it (from its record: it only observes).
    ``channels`` narrows a notify hook to those aliases, ``relayers`` a relay hook to those
    relayers (names or ids); absent: all."""

    before: Literal["notify", "apply", "relay"] | None = None
    after: Literal["notify", "apply", "relay"] | None = None
    channels: list[Annotated[str, Field(pattern=_ALIAS)]] = Field(default_factory=list)
    relayers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one(self) -> HookConfig:
        if (self.before is None) == (self.after is None):
            raise ValueError(
                "give either before: (notify, apply or relay) or after: (notify, apply or relay)"
            )
        operation = self.before or self.after
        if self.channels and operation != "notify":
            raise ValueError(f"channels: only a notify hook has them, this one is {operation}")
        if self.relayers and operation != "relay":
            raise ValueError(f"relayers: only a relay hook has them, this one is {operation}")
        return self

    @property
    def when(self) -> str:
        return "before" if self.before is not None else "after"


class EmailTrigger(_Model):
    """Mail to ``<task id>@…`` at vigil's SMTP ingress (VIGIL_EMAIL_BIND) runs the task."""

    senders: list[Annotated[str, Field(pattern=r"^([^@\s]+@)?[^@\s]+\.[^@\s]+$")]] = Field(
        min_length=1,
        description="who may trigger it: addresses (ops@example.com) or domains (example.com); "
        "the envelope sender is not authenticated, so bind the ingress where only your mail "
        "relay reaches it",
    )

    def allows(self, sender: str) -> bool:
        sender = sender.lower()
        return any(
            sender == allowed.lower()
            or ("@" not in allowed and sender.endswith("@" + allowed.lower()))
            for allowed in self.senders
        )


class TaskConfig(_Model):
    """A task: tasks/<id>.yaml names its code and its limits."""

    name: str = Field(min_length=1, max_length=100)
    code: str = Field(
        min_length=1, description="a .py file or a folder with main.py, relative to this file"
    )
    timeout: float = Field(default=300.0, gt=0, le=900, description="seconds a run may take")
    memory_mb: int = Field(default=256, ge=64, le=4096, description="memory a run may use")
    failure_channels: list[Annotated[str, Field(pattern=_ALIAS)]] = Field(
        default_factory=list, description="channel aliases told when a run fails"
    )
    schedule: ScheduleConfig | None = None
    email: EmailTrigger | None = None
    hooks: list[HookConfig] = Field(
        default_factory=list, description="vigil operations the task runs before or after"
    )
    relayer: str | None = Field(
        default=None,
        min_length=1,
        description="a relayer's name or id: the run's context.relayer sends through it "
        "(its key never enters the run)",
    )
    run_as: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the name of an API key its scheduled, monitor, webhook and e-mail runs "
        "act as: they may do only what its scopes allow (kv:read, kv:write, notify:send, "
        "relayer:send); unset: everything",
    )
    paused: bool = False


class ContractConfig(_Model):
    """A named contract of the address book (``contracts:`` in vigil.yaml): monitors name it
    in ``addresses``, and take its ABI when they give none."""

    network: str
    address: Address
    abi: str | list[dict[str, Any]] | None = Field(
        default=None, description="an ABI file (relative to vigil.yaml) or the ABI itself"
    )

    @field_validator("address", mode="before")
    @classmethod
    def _unquoted_hex(cls, address: Any) -> Any:
        return _restore_hex([address])[0]


class ProjectConfig(_Model):
    """vigil.yaml."""

    networks: dict[str, NetworkConfig] = Field(default_factory=dict)
    defaults: SeverityRoutes = Field(default_factory=SeverityRoutes)
    forta_api: list[FortaApiConfig] = Field(default_factory=list)
    contracts: dict[Annotated[str, Field(pattern=CONTRACT_NAME.pattern)], ContractConfig] = Field(
        default_factory=dict, description="the address book: contracts by name"
    )

    @model_validator(mode="after")
    def _contract_networks(self) -> ProjectConfig:
        for name, contract in self.contracts.items():
            if contract.network not in self.networks:
                raise ValueError(
                    f"contracts.{name}.network: unknown network {contract.network!r}; "
                    f"networks: {', '.join(sorted(self.networks)) or 'none'}"
                )
        return self

"""Pydantic models of notification channels (channels/*.yaml), one per channel type.

Credentials are never in these files: a channel names a secret (``*_secret``) whose value
the worker reads from VIGIL_SECRETS. Field names are the public file format.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)

_ALIAS = r"^[a-z0-9][a-z0-9_-]*$"
_SECRET = r"^[A-Za-z0-9_.-]+$"
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
OPSGENIE_DETAILS_LIMIT = 8000  # characters of an alert's details, keys and values in all
DISCORD_REFUSED_NAMES = ("discord", "clyde", "here", "everyone")


def _http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http(s):// URL, got {url!r}")
    return url


class MessageTemplate(BaseModel):
    """Custom message: plain-text subject and limited-markdown body with ``{{ path }}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    subject: str | None = None
    body: str | None = None

    @field_validator("subject", "body")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                "is only whitespace, which chat services refuse; write text or leave it out"
            )
        return value


class _ChannelBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    alias: str = Field(pattern=_ALIAS)
    timeout: float = Field(default=10.0, gt=0, description="seconds per request")
    max_attempts: int = Field(default=5, ge=1, le=20)
    template: MessageTemplate | None = None
    paused: bool = Field(
        default=False,
        description="sends nothing: monitors' deliveries are suppressed (reason: channel), "
        "tasks' sends fail; `vigil channels pause|resume` override it until the file changes",
    )

    def warnings(self) -> list[str]:
        """What loads but is probably a mistake (``field: why``)."""
        return []

    def secret_fields(self) -> list[tuple[str, str]]:
        """(field, secret name) of every secret this channel needs."""
        return [
            (name, value)
            for name, value in self
            if name.endswith("secret") and isinstance(value, str) and value
        ]


class WebhookConfig(_ChannelBase):
    """POST {"events": [...]} signed with HMAC-SHA256 (secret: the key's name)."""

    type: Literal["webhook"]
    url: str
    secret: str | None = Field(default=None, pattern=_SECRET, description="HMAC key's name")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class _UrlConfig(_ChannelBase):
    """A channel whose URL is itself a credential: given by secret name (or, for tests, plain)."""

    url: str | None = None
    url_secret: str | None = Field(default=None, pattern=_SECRET)

    @model_validator(mode="after")
    def _one_url(self) -> _UrlConfig:
        if (self.url is None) == (self.url_secret is None):
            raise ValueError("give exactly one of url_secret (the secret's name) and url")
        if self.url is not None:
            _http_url(self.url)
        return self


class SlackConfig(_UrlConfig):
    """Slack incoming webhook; the body is rendered as Slack mrkdwn."""

    type: Literal["slack"]


class DiscordConfig(_UrlConfig):
    """Discord webhook; the body is rendered as Discord markdown (2,000 characters)."""

    type: Literal["discord"]
    username: str | None = Field(default=None, min_length=1, max_length=80)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        # Discord refuses every message whose webhook username holds one of these, in any
        # case and anywhere ("groundsphere" fails on "here"), with 400 USERNAME_INVALID
        for word in DISCORD_REFUSED_NAMES:
            if value is not None and word in value.lower():
                raise ValueError(
                    f"Discord refuses a webhook username containing {word!r} (got {value!r}), "
                    "and every delivery would fail; choose another"
                )
        return value


class TelegramConfig(_ChannelBase):
    """Telegram Bot API sendMessage (MarkdownV2) to one chat."""

    type: Literal["telegram"]
    bot_token_secret: str = Field(pattern=_SECRET)
    chat_id: Annotated[
        str, WithJsonSchema({"type": ["string", "integer"], "description": "chat id or @channel"})
    ] = Field(min_length=1)

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class EmailConfig(_ChannelBase):
    """SMTP: HTML body with a plain-text alternative, to recipients split by ``,`` or ``;``."""

    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535, description="default: 465 for tls, else 587")
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_secret: str | None = Field(default=None, pattern=_SECRET)
    sender: str
    recipients: Annotated[
        list[str],
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    {"type": "string", "description": "addresses separated by , or ;"},
                ]
            }
        ),
    ] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _port(cls, data: Any) -> Any:
        """Implicit TLS listens on 465 (RFC 8314); STARTTLS and plain submission on 587."""
        if isinstance(data, dict) and data.get("port") is None and data.get("security") == "tls":
            return {**data, "port": 465}
        return data

    def warnings(self) -> list[str]:
        if self.security == "none" and self.username:
            return [
                "security: none with a username: servers offer login only after STARTTLS, "
                "and the password would cross the network in the clear; use starttls or tls"
            ]
        return []

    @field_validator("recipients", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [p.strip() for v in value for p in re.split(r"[,;]", str(v)) if p.strip()]
        return value

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not _EMAIL.match(address):
                raise ValueError(f"expected e-mail addresses, got {address!r}")
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        address = value.rsplit("<", 1)[-1].rstrip(">").strip()
        if not _EMAIL.match(address):
            raise ValueError(f"expected an e-mail address, got {value!r}")
        return value


class DatadogConfig(_ChannelBase):
    """A COUNT metric ``<prefix>sentinel`` per notified block, tagged network and monitor."""

    type: Literal["datadog"]
    api_key_secret: str = Field(pattern=_SECRET)
    metric_prefix: str = Field(default="vigil.", pattern=r"^[A-Za-z0-9_.]*$")
    site: str = Field(default="datadoghq.com", pattern=r"^[a-z0-9.-]+$")
    api_version: Literal["v1", "v2"] = "v2"


class PagerDutyConfig(_ChannelBase):
    """PagerDuty Events API v2: alert events (trigger/acknowledge/resolve) or change events."""

    type: Literal["pagerduty"]
    routing_key_secret: str = Field(pattern=_SECRET)
    event_type: Literal["alert", "change"] = "alert"
    event_action: Literal["trigger", "acknowledge", "resolve"] = "trigger"
    dedup_key: str | None = Field(default=None, max_length=255, description="default: match id")
    severity: Literal["critical", "error", "warning", "info"] = "warning"
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(default=None, alias="class")
    custom_details: dict[str, str] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Responder(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["team", "user", "escalation", "schedule"]
    id: str | None = None
    name: str | None = None
    username: str | None = None

    @model_validator(mode="after")
    def _named(self) -> Responder:
        # Opsgenie knows a user by id or username (their e-mail), the others by id or name
        if self.type == "user":
            if self.name is not None:
                raise ValueError(
                    "a user responder is named by id or username (their e-mail), not name; "
                    f"got name {self.name!r}"
                )
            if not (self.id or self.username):
                raise ValueError("give the user's id or username (their e-mail)")
        else:
            if self.username is not None:
                raise ValueError(f"a {self.type} responder has an id or a name, not a username")
            if not (self.id or self.name):
                raise ValueError(f"give the {self.type}'s id or name")
        return self


class OpsgenieConfig(_ChannelBase):
    """Opsgenie Alert API (US or EU instance)."""

    type: Literal["opsgenie"]
    api_key_secret: str = Field(pattern=_SECRET)
    instance: Literal["US", "EU"] = "US"
    responders: list[Responder] = Field(default_factory=list, max_length=50)
    visible_to: list[Responder] = Field(default_factory=list, max_length=50)
    alert_alias: str | None = Field(default=None, max_length=512, description="default: match id")
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P3"
    entity: str | None = Field(default=None, max_length=512)
    actions: list[Annotated[str, Field(max_length=50)]] = Field(default_factory=list, max_length=10)
    note: str | None = Field(default=None, max_length=25_000)
    details: dict[str, str] = Field(default_factory=dict)
    tags: list[Annotated[str, Field(max_length=50)]] = Field(default_factory=list, max_length=20)

    @field_validator("visible_to")
    @classmethod
    def _visible(cls, value: list[Responder]) -> list[Responder]:
        for responder in value:
            if responder.type not in ("team", "user"):
                raise ValueError(f"visible_to takes teams and users, got {responder.type!r}")
        return value

    @field_validator("details")
    @classmethod
    def _details(cls, value: dict[str, str]) -> dict[str, str]:
        size = sum(len(k) + len(v) for k, v in value.items())
        if size > OPSGENIE_DETAILS_LIMIT:
            raise ValueError(f"details may hold 8,000 characters in all, got {size}")
        return value


CHANNEL_MODELS: dict[str, type[BaseModel]] = {
    "webhook": WebhookConfig,
    "slack": SlackConfig,
    "discord": DiscordConfig,
    "telegram": TelegramConfig,
    "email": EmailConfig,
    "datadog": DatadogConfig,
    "pagerduty": PagerDutyConfig,
    "opsgenie": OpsgenieConfig,
}
ChannelConfig = Annotated[
    WebhookConfig
    | SlackConfig
    | DiscordConfig
    | TelegramConfig
    | EmailConfig
    | DatadogConfig
    | PagerDutyConfig
    | OpsgenieConfig,
    Field(discriminator="type"),
]
CHANNEL: TypeAdapter[ChannelConfig] = TypeAdapter(ChannelConfig)
CHANNEL_TYPES = tuple(CHANNEL_MODELS)

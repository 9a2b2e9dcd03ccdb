"""Pydantic models of the project files; field names are the public file format."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_ALIAS = r"^[a-z0-9][a-z0-9_-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Model):
    """One chain vigil ingests."""

    chain_id: int = Field(gt=0)
    rpc_urls: list[str] = Field(min_length=1)
    poll_interval: float = Field(default=2.0, gt=0)
    start_block: int | Literal["latest"] = "latest"
    explorer_url: str | None = None

    @field_validator("rpc_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"expected an http(s):// JSON-RPC URL, got {url!r}")
        return urls


class EventCondition(_Model):
    signature: str = Field(min_length=1)
    expression: str | None = None


class FunctionCondition(_Model):
    signature: str = Field(min_length=1)
    expression: str | None = None


class Conditions(_Model):
    transaction: str | None = None
    events: list[EventCondition] = Field(default_factory=list)
    functions: list[FunctionCondition] = Field(default_factory=list)


class MonitorConfig(_Model):
    """A contract monitor (monitors/*.yaml)."""

    name: str = Field(min_length=1)
    id: str | None = Field(default=None, pattern=_ALIAS)
    type: Literal["contract"] = "contract"
    network: str
    addresses: list[str] = Field(min_length=1)
    abi: str | list[dict[str, Any]] | None = None
    confirm_blocks: int | Literal["safe", "finalized"] = 0
    severity: Literal["high", "medium", "low"] = "medium"
    risk_category: Literal["governance", "access-control", "suspicious", "financial",
                           "technical"] | None = None
    conditions: Conditions = Field(default_factory=Conditions)
    channels: list[str] = Field(default_factory=list)
    paused: bool = False

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not _ADDRESS.match(address):
                raise ValueError(f"expected a 0x-prefixed 40-hex-digit address, got {address!r}")
        return [a.lower() for a in addresses]


class ChannelConfig(_Model):
    """A notification channel (channels/*.yaml); only webhooks so far."""

    alias: str = Field(pattern=_ALIAS)
    type: Literal["webhook"]
    url: str
    secret: str | None = Field(default=None, description="name of the HMAC secret")
    timeout: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s):// URL, got {url!r}")
        return url


class ProjectConfig(_Model):
    """vigil.yaml."""

    networks: dict[str, NetworkConfig] = Field(default_factory=dict)

"""The secrets a project's files name (channel secrets, ``${NAME}`` in RPC URLs), and which
of them this environment does not hold."""

from __future__ import annotations

from vigil.config.loader import Project
from vigil.config.urls import redact, references
from vigil.errors import ConfigError
from vigil.settings import Settings


def missing_secrets(project: Project, settings: Settings) -> list[ConfigError]:
    """One error per secret or reference that is not set, naming file, object and field."""
    missing = [
        ConfigError(
            f"secret {name!r} is not set; keep it sealed with `vigil secrets set {name}`, or "
            f'give it in VIGIL_SECRETS as {{"{name}": "..."}}',
            file=str(channel.file),
            obj=f"channel {channel.config.alias!r}",
            field=field,
        )
        for group in project.channels.values()
        for channel in group
        for field, name in channel.config.secret_fields()
        if name not in settings.secrets
    ]
    for network, config in project.config.networks.items():
        for i, endpoint in enumerate(config.rpc_urls):
            missing.extend(
                ConfigError(
                    f"{redact(endpoint.url)} refers to ${{{name}}}, which is not set; provide "
                    "it in VIGIL_SECRETS or the environment",
                    file=str(project.root / "vigil.yaml"),
                    obj=f"network {network!r}",
                    field=f"rpc_urls[{i}]",
                )
                for name in references(endpoint.url)
                if settings.reference(name) is None
            )
    return missing

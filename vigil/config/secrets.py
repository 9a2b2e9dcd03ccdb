"""The secrets a project's channels name, and which of them the settings do not hold."""

from __future__ import annotations

from collections.abc import Container

from vigil.config.loader import Project
from vigil.errors import ConfigError


def missing_secrets(project: Project, secrets: Container[str]) -> list[ConfigError]:
    """One error per secret a channel names that ``secrets`` lacks, naming file and field."""
    return [
        ConfigError(
            f'secret {name!r} is not set; provide it in VIGIL_SECRETS as {{"{name}": "..."}}',
            file=str(channel.file),
            obj=f"channel {channel.config.alias!r}",
            field=field,
        )
        for group in project.channels.values()
        for channel in group
        for field, name in channel.config.secret_fields()
        if name not in secrets
    ]

"""Project files (vigil.yaml, monitors/, channels/): pydantic models and the loader."""

from vigil.config.channels import ChannelConfig
from vigil.config.loader import (
    LoadedChannel,
    LoadedMonitor,
    Project,
    load_monitor_file,
    load_project,
)
from vigil.config.models import MonitorConfig, NetworkConfig, ProjectConfig

__all__ = [
    "ChannelConfig",
    "LoadedChannel",
    "LoadedMonitor",
    "MonitorConfig",
    "NetworkConfig",
    "Project",
    "ProjectConfig",
    "load_monitor_file",
    "load_project",
]

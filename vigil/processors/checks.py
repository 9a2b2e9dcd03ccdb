"""What loading cannot check alone: conditions compile and event signatures resolve.

The loader (``config``) reads and cross-checks files; these checks need the condition
language and the ABI decoder, so every caller that loads a project to act on it (apply,
validate, run, test) passes it through here first. Errors name file, monitor and field.
"""

from __future__ import annotations

from vigil.config.loader import LoadedMonitor, Project
from vigil.config.models import MonitorConfig
from vigil.processors.matching import compile_monitor


def check_monitor(monitor: LoadedMonitor) -> LoadedMonitor:
    """``monitor`` unchanged if its signatures and conditions compile; else ConfigError."""
    if isinstance(monitor.config, MonitorConfig):
        compile_monitor(monitor, chain_id=0)
    return monitor


def check_project(project: Project) -> Project:
    """``project`` unchanged if every contract monitor compiles; else the first ConfigError."""
    for monitor in project.monitors:
        check_monitor(monitor)
    return project

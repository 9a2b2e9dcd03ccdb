"""docker-compose.yml cannot run here (no Docker engine): check what it promises instead."""

from typing import Any

import yaml

from vigil.cli import app
from vigil.settings import REPO_ROOT, Settings


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_services_reference_what_exists() -> None:
    services = compose()["services"]
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    settings = set(Settings.model_fields)
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        if service.get("image", "").startswith("vigil"):
            assert (REPO_ROOT / "Dockerfile").exists()
            assert service["command"][0] == "vigil"
            assert service["command"][1] in commands, service["command"]
            for variable in service["environment"]:
                assert variable.removeprefix("VIGIL_").lower() in settings, variable
        else:
            assert ":" in service["image"] and not service["image"].endswith(":latest")


def test_the_vigil_roles_all_run_against_shared_kafka() -> None:
    services = compose()["services"]
    roles = {s["command"][1] for s in services.values() if s.get("image", "").startswith("vigil")}
    assert roles == {"serve", "ingest", "worker"}
    for service in services.values():
        if service.get("image", "").startswith("vigil"):
            assert service["environment"]["VIGIL_KAFKA_BOOTSTRAP"] == "kafka:9092"

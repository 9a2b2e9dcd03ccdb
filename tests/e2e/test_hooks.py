"""Hooks on notifications through the running stack: a before hook rewrites what the
webhook receives, another vetoes a delivery (a suppressed match, reason hook), and an after
hook observes the deliveries without changing them."""

import json
from typing import Any

import httpx
import pytest

from tests.e2e.stack import LARGE, Running
from tests.helpers import run_vigil
from vigil.stack.access import api_headers
from vigil.testing import wait_for

pytestmark = pytest.mark.e2e

REWRITE = """def handler(event):
    payload = event["request"]["body"]
    return {"events": [{**e, "hooked": payload["channel"]["alias"]} for e in payload["events"]]}
"""
VETO = """def handler(event):
    for e in event["request"]["body"]["events"]:
        if e["matchReasons"][0]["params"]["value"] == str(3 * 2000 * 10**18):
            raise PermissionError("transfers of 6,000 are not told")
"""
OBSERVE = """def handler(event):
    delivery = event["request"]["body"]["delivery"]
    print("observed", delivery["status"], delivery["channel"])
    return {"status": "ignored: an after hook changes nothing"}
"""


GUARD = """def handler(event):
    changes = event["request"]["body"]["changes"]
    for change in changes:
        if change["spec"] and "forbidden" in change["spec"]["config"]["name"]:
            raise PermissionError("no forbidden monitors here")
    return {"changes": [
        {**c, "spec": {**c["spec"], "config": {**c["spec"]["config"], "severity": "high"}}}
        if c["kind"] == "monitor" and c["action"] == "upsert" else c
        for c in changes
    ]}
"""
AUDIT = """def handler(event):
    change = event["request"]["body"]["change"]
    print("audit", change["kind"], change["id"], change["action"], change["source"])
"""


def _events(running: Running) -> list[dict[str, Any]]:
    return [event for post in running.receiver.received for event in post.json()["events"]]


def test_before_hooks_rewrite_and_veto_and_after_hooks_observe(running: Running) -> None:
    settings = running.stack.settings
    tasks = settings.project_dir / "tasks"
    for name, code, hook in (
        ("rewrite", REWRITE, "{before: notify, channels: [hook]}"),
        ("veto", VETO, "{before: notify}"),
        ("observe", OBSERVE, "{after: notify}"),
        ("guard", GUARD, "{before: apply}"),
        ("audit", AUDIT, "{after: apply}"),
    ):
        (tasks / f"{name}.py").write_text(code)
        (tasks / f"{name}.yaml").write_text(
            f"name: {name}\ncode: {name}.py\ntimeout: 30\nhooks: [{hook}]\n"
        )
    applied = run_vigil(settings, "apply")
    assert applied.returncode == 0, applied.stderr
    log = running.stack.logs / "worker.log"
    wait_for(lambda: "config: task observe" in log.read_text() or None, 30, "the hooks applied")

    running.mine_transfers(LARGE)
    [told] = wait_for(lambda: _events(running) or None, 60, "the rewritten delivery")
    assert told["hooked"] == "hook"  # the before hook's events are what was sent
    vetoed_block = running.mine_transfers(3 * LARGE)
    rows = wait_for(
        lambda: running.sql("SELECT reason, detail, block_number FROM suppressed FINAL") or None,
        60,
        "the vetoed match",
    )
    assert rows == [
        ["hook", "hook veto: PermissionError: transfers of 6,000 are not told", vetoed_block]
    ]
    assert len(_events(running)) == 1  # nothing more was sent

    runs = wait_for(
        lambda: (
            r
            if len(
                r := running.sql(
                    "SELECT task_id, status, logs FROM task_runs FINAL WHERE trigger = 'hook' "
                    "AND task_id IN ('rewrite', 'veto', 'observe') ORDER BY started_at"
                )
            )
            >= 5
            else None
        ),
        60,
        "the hooks' runs",
    )
    by_task = {}
    for task_id, status, logs in runs:
        by_task.setdefault(task_id, []).append((status, logs))
    assert [s for s, _ in by_task["rewrite"]] == ["success", "success"]
    assert [s for s, _ in by_task["veto"]] == ["success", "error"]
    [(status, logs)] = by_task["observe"]  # the one delivery made; the veto made none
    assert status == "success" and logs.startswith("observed SENT hook")
    assert json.loads(json.dumps(_events(running)))[0]["hooked"] == "hook"

    # apply hooks: the before hook rewrites a monitor's severity, and refuses another
    monitors = settings.project_dir / "monitors"
    source = (monitors / "large.yaml").read_text().replace("large transfers", "extra")
    (monitors / "extra.yaml").write_text(source.replace("severity: medium", ""))
    assert run_vigil(settings, "apply").returncode == 0
    listed = httpx.get(f"{settings.api_url}/monitors", headers=api_headers(settings)).json()
    assert {m["id"]: m["severity"] for m in listed}["extra"] == "high"
    (monitors / "forbidden.yaml").write_text(source.replace("extra", "forbidden one"))
    refused = run_vigil(settings, "apply")
    assert refused.returncode == 2 and refused.stdout == ""
    assert (
        "the hook guard refused the change(s): PermissionError: no forbidden monitors here"
        in refused.stderr
    )
    listed = httpx.get(f"{settings.api_url}/monitors", headers=api_headers(settings)).json()
    assert "forbidden" not in {m["id"] for m in listed}  # nothing half-applied
    audited = wait_for(
        lambda: (
            running.sql(
                "SELECT logs FROM task_runs FINAL WHERE task_id = 'audit' AND logs LIKE '%extra%'"
            )
            or None
        ),
        60,
        "the after-apply hook",
    )
    assert audited == [["audit monitor extra upsert apply\n"]]

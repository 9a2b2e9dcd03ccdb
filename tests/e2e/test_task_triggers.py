"""Every trigger of a task through the running stack: a webhook URL (its answer, headers
passed and withheld, GET, a non-JSON body, pending, regeneration), a monitor's matches
(with context.notify through a channel), a run by hand through the API whose failure
reaches the task's failure channel, and a schedule."""

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack import LARGE, Running
from tests.helpers import run_vigil
from vigil.stack.access import api_headers
from vigil.testing import wait_for

pytestmark = pytest.mark.e2e

ECHO = """def handler(event):
    print("echo", event["trigger"])
    return event["request"]
"""
SLOW = """import pathlib
import time

def handler(event):
    time.sleep(9)
    mark = event["request"]["body"].get("mark")
    if mark:
        pathlib.Path(mark).write_text("ran")
    return "late"
"""
RELAY = """def handler(event, context):
    events = event["request"]["body"]["events"]
    block = events[0]["blockNumber"]
    context.notify.send("hook", "relayed", f"{len(events)} match(es) in block {block}")
    try:
        context.notify.send("nope", "never", "sent")
    except Exception as exc:
        print("refused:", exc)
    return {"block": block, "hashes": [e["hash"] for e in events]}
"""
KEEP_FIRST = """def handler(event):
    first = event["request"]["body"]["events"][0]
    return {"matches": [{"hash": first["hash"], "metadata": {"why": "the first one"}}]}
"""
FAILS = """def handler(event):
    raise RuntimeError("broken on purpose")
"""


def _add_tasks(project: Path, token: str) -> None:
    for name, code, extra in (
        ("echo", ECHO, ""),
        ("slow", SLOW, ""),
        ("relay", RELAY, ""),
        ("fails", FAILS, "failure_channels: [hook]\n"),
        ("ticker", ECHO, "schedule: {every: 1m}\n"),
    ):
        (project / "tasks" / f"{name}.py").write_text(code)
        (project / "tasks" / f"{name}.yaml").write_text(
            f"name: {name}\ncode: {name}.py\ntimeout: 30\n{extra}"
        )
    (project / "filters").mkdir(exist_ok=True)
    (project / "filters" / "keep_first.py").write_text(KEEP_FIRST)
    (project / "monitors" / "filtered.yaml").write_text(
        f"name: filtered transfers\nnetwork: anvil\naddresses: ['{token}']\n"
        "abi: ../abis/ERC20.json\nconditions:\n  events:\n"
        "    - signature: Transfer(address,address,uint256)\n"
        "      expression: value >= 1000 * 10^18\nchannels: [hook]\n"
        "filter: ../filters/keep_first.py\n"
    )
    (project / "monitors" / "relayed.yaml").write_text(
        f"name: relayed transfers\nnetwork: anvil\naddresses: ['{token}']\n"
        "abi: ../abis/ERC20.json\nconditions:\n  events:\n"
        "    - signature: Transfer(address,address,uint256)\n"
        "      expression: value >= 1000 * 10^18\ntasks: [relay]\n"
    )


def _task_notices(running: Running) -> list[dict[str, Any]]:
    bodies = [post.json()["events"][0] for post in running.receiver.received]
    return [event for event in bodies if event.get("type") == "TASK"]


def _monitor_posts(running: Running, name: str) -> list[dict[str, Any]]:
    bodies = [post.json() for post in running.receiver.received]
    return [b for b in bodies if b["events"][0].get("monitor", {}).get("name") == name]


def _run_row(running: Running, task: str) -> list[Any] | None:
    rows = running.sql(
        "SELECT status, result, logs, error_type, trigger FROM task_runs FINAL "
        f"WHERE task_id = '{task}' AND status != 'pending'"
    )
    return rows[0] if rows else None


def test_webhook_monitor_and_manual_triggers(running: Running) -> None:
    settings = running.stack.settings
    _add_tasks(settings.project_dir, running.token.address)
    applied = run_vigil(settings, "apply")
    assert applied.returncode == 0, applied.stderr

    # a webhook URL, shown once; the answer is the hosted service's shape
    made = run_vigil(settings, "tasks", "webhook", "echo")
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith(f"{settings.api_url}/tasks/echo/webhook/")
    headers = {
        "X-Trace": "t-1",
        "Stripe-Signature": "sig",
        "Authorization": "Bearer not-for-the-task",
        "X-Api-Key": "not-for-the-task-either",
    }
    answer = httpx.post(
        url, params={"a": "1"}, json={"hello": "world"}, headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success", body
    assert body["trigger"] == "webhook" and body["taskId"] == body["autotaskId"] == "echo"
    assert body["runId"] == f"webhook:{body['requestId']}" and body["createdAt"].endswith("Z")
    assert base64.b64decode(body["encodedLogs"]) == b"echo webhook\n"
    assert json.loads(body["result"]) == {
        "body": {"hello": "world"},
        "headers": {"x-trace": "t-1", "stripe-signature": "sig"},
        "queryParameters": {"a": "1"},
    }
    got = httpx.get(url, timeout=10)
    assert got.status_code == 405 and "takes POST with a JSON body" in got.json()["message"]
    not_json = httpx.post(url, content=b"a=1", timeout=10)
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["message"]
    assert httpx.post(url.replace("/echo/", "/slow/"), json={}, timeout=10).status_code == 404

    # a new URL: the old one answers 404 (within the API's follow of the topic)
    again = run_vigil(settings, "tasks", "webhook", "echo").stdout.strip()
    assert again != url
    wait_for(lambda: httpx.post(url, json={}, timeout=10).status_code == 404, 10, "old URL 404")
    assert httpx.post(again, json={}, timeout=30).json()["status"] == "success"

    # a run longer than the wait answers pending, and its record is completed later
    slow = run_vigil(settings, "tasks", "webhook", "slow").stdout.strip()
    pending = httpx.post(slow, json={}, timeout=30).json()
    assert pending["status"] == "pending" and pending["result"] is None
    row = wait_for(lambda: _run_row(running, "slow"), 60, "the slow run's final record")
    assert row[0] == "success" and json.loads(row[1]) == "late"

    # a monitor's matches trigger its task with the block's events; the task notifies
    block = running.mine_transfers(LARGE, LARGE)
    row = wait_for(lambda: running.stack.check() or _run_row(running, "relay"), 60, "relay run")
    status, result, logs, _, trigger = row
    assert (status, trigger) == ("success", "monitor"), row
    found = json.loads(result)  # the event's block number is hex, as webhooks get it
    assert int(found["block"], 16) == block and len(found["hashes"]) == 2
    assert "refused: unknown notification channel alias 'nope'; applied: hook" in logs
    [notice] = wait_for(lambda: _task_notices(running) or None, 30, "the task's notification")
    assert (notice["subject"], notice["message"]) == (
        "relayed",
        f"2 match(es) in block {hex(block)}",
    )
    assert notice["task"]["id"] == "relay" and notice["trigger"] == "monitor"

    # the filtered monitor: its filter kept the first of the two, with its metadata
    filtered = wait_for(lambda: _monitor_posts(running, "filtered transfers") or None, 60, "post")
    [[event]] = [post["events"] for post in filtered]
    assert event["hash"] == found["hashes"][0] and event["metadata"] == {"why": "the first one"}
    stored = wait_for(
        lambda: (
            running.sql(
                "SELECT transaction_hash, JSONExtractString(event, 'metadata', 'why') FROM matches "
                "FINAL WHERE monitor_name = 'filtered transfers'"
            )
            or None
        ),
        60,
        "the kept match in history",
    )
    assert stored == [[event["hash"], "the first one"]]

    # by hand through the API, with a key that may run this task only; the failure
    # reaches the task's failure channel
    made = run_vigil(
        settings,
        "keys",
        "create",
        "--name",
        "ops",
        "--scope",
        "tasks:run:fails",
        "--format",
        "json",
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    only = {"Authorization": f"Bearer {key['key']}"}
    denied = wait_for(
        lambda: (
            r
            if (r := httpx.post(f"{settings.api_url}/tasks/echo/runs", headers=only)).status_code
            != 401
            else None
        ),
        10,
        "the API to know the new key",
    )
    assert denied.status_code == 403
    assert denied.json()["detail"] == f"the key {key['keyId']} lacks the scope tasks:run:echo"
    manual = httpx.post(
        f"{settings.api_url}/tasks/fails/runs", json={"why": "test"}, headers=only, timeout=30
    ).json()
    assert manual["status"] == "error" and manual["trigger"] == "manual", manual
    assert (manual["errorType"], manual["message"]) == ("RuntimeError", "broken on purpose")
    wait_for(lambda: len(_task_notices(running)) == 2 or None, 30, "the failure notice")
    failure = _task_notices(running)[1]
    assert failure["task"]["id"] == "fails" and failure["status"] == "error"
    assert failure["errorMessage"] == "broken on purpose"
    sent = wait_for(
        lambda: (
            r
            if len(
                r := running.sql(
                    "SELECT monitor_id, status FROM deliveries FINAL "
                    "WHERE monitor_id LIKE 'task:%' ORDER BY monitor_id"
                )
            )
            == 2
            else None
        ),
        60,
        "the tasks' deliveries in history",
    )
    assert sent == [["task:fails", "SENT"], ["task:relay", "SENT"]]
    listed = httpx.get(f"{settings.api_url}/tasks", headers=api_headers(settings), timeout=10)
    ids = ["counter", "echo", "fails", "relay", "slow", "ticker"]
    assert [t["id"] for t in listed.json()] == ids

    # on its schedule: the next minute's tick (VIGIL_TICK_INTERVAL is 1 s here) runs it
    scheduled = (
        "SELECT run_id, trigger, result FROM task_runs FINAL "
        "WHERE task_id = 'ticker' AND status = 'success'"
    )
    rows = wait_for(lambda: running.sql(scheduled) or None, 75, "the scheduled run")
    run_id, trigger, result = rows[0]
    due = int(run_id.removeprefix("schedule:ticker:"))
    assert due % 60_000 == 0 and trigger == "schedule"
    assert json.loads(result)["body"] == {"scheduledAt": due}


def test_a_runner_killed_mid_run_leaves_no_second_run_and_no_orphan(
    running: Running, tmp_path: Path
) -> None:
    settings, stack = running.stack.settings, running.stack
    _add_tasks(settings.project_dir, running.token.address)
    assert run_vigil(settings, "apply").returncode == 0
    mark = tmp_path / "the-run-went-on"
    call = threading.Thread(
        target=httpx.post,
        args=(f"{settings.api_url}/tasks/slow/runs",),
        kwargs={"json": {"mark": str(mark)}, "headers": api_headers(settings), "timeout": 30},
    )
    call.start()
    query = "SELECT run_id FROM task_runs FINAL WHERE task_id = 'slow' AND status = 'pending'"
    [[run_id]] = wait_for(lambda: running.sql(query) or None, 30, "the run's pending record")
    runner = stack.children.pop("runner")
    runner.kill()  # SIGKILL: no clean-up of any kind
    runner.wait(10)
    stack.start_role("runner")  # its request was not committed: the new runner gets it again
    log = stack.logs / "runner.log"
    taken = f"task run {run_id} was taken before: not run again"
    wait_for(lambda: taken in log.read_text(), 60, "the restarted runner to skip the run")
    call.join(30)
    time.sleep(10)  # past the 9 s the run would have taken, had it lived on
    assert not mark.exists(), "the run outlived its runner"
    rows = running.sql(f"SELECT status FROM task_runs FINAL WHERE run_id = '{run_id}'")
    assert rows == [["pending"]]  # never run twice; the dead runner's run stays pending

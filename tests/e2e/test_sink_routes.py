"""Sink routes through the running stack: `vigil tasks route` prints a signed URL; a call
runs the task and answers with its status, headers and body (bytes too); a wrong signature,
path, method or content type is refused before any code runs."""

import time

import httpx
import pytest

from tests.e2e.stack import Running
from tests.helpers import run_vigil
from vigil.config.sink_routes import SinkRoute
from vigil.testing import wait_for

pytestmark = pytest.mark.e2e

SINK = """import base64

def handler(event):
    request = event["request"]
    print("called")
    if request["queryParameters"].get("raw"):
        return {
            "status": 202,
            "headers": {"X-Made-By": "task", "content-type": "application/octet-stream"},
            "body": {"base64": base64.b64encode(b"\\x00\\x01binary").decode()},
        }
    return {"status": 201, "headers": {"X-Made-By": "task"}, "body": {"got": request["body"]}}
"""


def test_a_signed_route_answers_with_the_tasks_result(running: Running) -> None:
    settings = running.stack.settings
    tasks = settings.project_dir / "tasks"
    (tasks / "sink.py").write_text(SINK)
    (tasks / "sink.yaml").write_text("name: sink\ncode: sink.py\ntimeout: 30\n")
    assert run_vigil(settings, "apply").returncode == 0
    made = run_vigil(
        settings, "tasks", "route", "sink", "--content-type", "application/json", "--path", "in"
    )
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith(f"{settings.api_url}/routes/") and url.endswith("/in")

    answer = httpx.post(url, json={"n": 1}, timeout=60)
    assert answer.status_code == 201, answer.text
    assert answer.headers["x-made-by"] == "task" and answer.json() == {"got": {"n": 1}}
    raw = httpx.post(url, params={"raw": "1"}, json={}, timeout=60)
    assert raw.status_code == 202 and raw.content == b"\x00\x01binary"
    assert raw.headers["content-type"] == "application/octet-stream"

    # refused before any code runs
    assert httpx.get(url, timeout=10).status_code == 405
    wrong_type = httpx.post(url, content=b"n=1", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert httpx.post(url[:-1] + "x", json={}).status_code == 404  # another suffix
    token = url.split("/routes/")[1].split("/")[0]
    forged = url.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert httpx.post(forged, json={}).status_code == 401
    other_secret = SinkRoute("sink", "POST", "application/json", "in").path("another secret")
    assert httpx.post(settings.api_url + other_secret, json={}).status_code == 401
    query = "SELECT count() FROM task_runs FINAL WHERE trigger = 'route'"
    wait_for(lambda: running.sql(query) == [[2]], 30, "the two runs in history")
    time.sleep(2)
    assert running.sql(query) == [[2]]  # only the two accepted calls ran

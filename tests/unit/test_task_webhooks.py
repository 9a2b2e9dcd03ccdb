"""A task webhook's answer and the headers that reach the task (the hosted service's rules)."""

import base64
import json

from vigil.streams.task_webhooks import passed_headers, response


def test_only_x_and_stripe_headers_reach_the_task_and_never_the_api_key() -> None:
    headers = {
        "X-Trace": "1",
        "stripe-signature": "s",
        "Authorization": "Bearer k",
        "X-Api-Key": "vigil_k",
        "Content-Type": "application/json",
        "Xylophone": "not an X- header",
    }
    assert passed_headers(headers) == {"x-trace": "1", "stripe-signature": "s"}


def test_the_answer_has_the_hosted_shape_while_pending_and_once_ended() -> None:
    pending = response("t", "webhook", "r-1", {"status": "pending", "logs": ""}, 1_614_106_154_812)
    assert pending == {
        "runId": "webhook:r-1",
        "taskId": "t",
        "autotaskRunId": "webhook:r-1",
        "autotaskId": "t",
        "trigger": "webhook",
        "status": "pending",
        "createdAt": "2021-02-23T18:49:14.812Z",
        "encodedLogs": "",
        "result": None,
        "requestId": "r-1",
    }
    assert response("t", "webhook", "r-1", None, 0)["status"] == "pending"
    done = response(
        "t", "webhook", "r-1", {"status": "success", "logs": "hi\n", "result": '{"a": 1}'}, 0
    )
    assert (done["status"], json.loads(done["result"])) == ("success", {"a": 1})
    assert base64.b64decode(done["encodedLogs"]) == b"hi\n"
    for ended in ("error", "timeout", "killed"):
        run = {"status": ended, "logs": "", "errorType": "E", "errorMessage": "why"}
        failed = response("t", "manual", "r-2", run, 0)
        assert (failed["status"], failed["errorType"], failed["message"]) == ("error", "E", "why")
        assert failed["runId"] == "manual:r-2"

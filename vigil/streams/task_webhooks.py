"""Task webhooks: each task's secret URL and what a call of it does.

A task's URL is ``/tasks/<id>/webhook/<token>``. Only the token's SHA-256 is kept, on the
compacted ``_task-webhooks`` topic (keyed by task id), so the URL is shown once, when it is
made; making a new one replaces it, and the old URL then answers 404. Every API process
follows the topic, so a regenerated URL counts within a second.

A call becomes a ``webhook`` request on ``tasks.requests`` under a run id of its own, and
waits up to VIGIL_TASK_WEBHOOK_WAIT seconds (25) for the run to end; a longer run answers
``pending`` and goes on. Only ``X-*`` and ``Stripe-*`` headers reach the task (never the
caller's vigil API key), with the query parameters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from kafka.errors import KafkaError

from vigil.clock import SYSTEM, Clock
from vigil.errors import BrokerError
from vigil.schemas.catalogue import TASK_WEBHOOKS_TOPIC
from vigil.schemas.codec import Codec
from vigil.schemas.records import task_request
from vigil.settings import Settings
from vigil.streams.kafka import Followed, producer
from vigil.streams.tasks import RunWatch

PASSED_PREFIXES = ("x-", "stripe-")
WITHHELD = {"x-api-key"}  # the caller's vigil credential is not the task's business


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_webhook(settings: Settings, bootstrap: str, task_id: str, clock: Clock = SYSTEM) -> str:
    """Make (or remake) ``task_id``'s webhook token; returns it, the only time it is seen."""
    token = secrets.token_urlsafe(32)
    record = {"taskId": task_id, "tokenHash": _digest(token), "createdAt": clock.ms()}
    sink = producer(settings, bootstrap, client_id="vigil-task-webhooks", linger_ms=0)
    try:
        topic = settings.topic(TASK_WEBHOOKS_TOPIC)
        sink.send(topic, key=task_id.encode(), value=json.dumps(record).encode()).get(30)
    except KafkaError as exc:
        raise BrokerError(f"writing the webhook of task {task_id} failed: {exc}") from exc
    finally:
        sink.close()
    return token


def passed_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers a task sees: ``X-*`` and ``Stripe-*`` ones, names lowercased."""
    return {
        name.lower(): value
        for name, value in headers.items()
        if name.lower().startswith(PASSED_PREFIXES) and name.lower() not in WITHHELD
    }


def response(
    task_id: str, trigger: str, request_id: str, run: dict[str, Any] | None, at_ms: int
) -> dict[str, Any]:
    """The webhook's answer (the hosted service's shape, with its autotask* names too):
    status success or error once the run ended, pending while it goes on."""
    run_id = f"{trigger}:{request_id}"
    status = "pending"
    if run is not None and run["status"] != "pending":
        status = "success" if run["status"] == "success" else "error"
    logs = (run or {}).get("logs") or ""
    body = {
        "runId": run_id,
        "taskId": task_id,
        "autotaskRunId": run_id,
        "autotaskId": task_id,
        "trigger": trigger,
        "status": status,
        "createdAt": datetime.fromtimestamp(at_ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "encodedLogs": base64.b64encode(logs.encode()).decode(),
        "result": (run or {}).get("result"),
        "requestId": request_id,
    }
    if status == "error" and run is not None:
        body["errorType"], body["message"] = run.get("errorType"), run.get("errorMessage")
    return body


class Webhooks:
    """The tokens the API accepts (followed), and the calls that turn into runs."""

    def __init__(
        self, settings: Settings, bootstrap: str, codec: Codec, clock: Clock = SYSTEM
    ) -> None:
        self.settings, self.bootstrap, self.codec, self.clock = settings, bootstrap, codec, clock
        self.topic = Followed(settings, bootstrap, settings.topic(TASK_WEBHOOKS_TOPIC))
        self.stopping, self.follow = self.topic.stopping, self.topic.follow
        self.requests = settings.topic("tasks.requests")
        self.sink = producer(settings, bootstrap, client_id="vigil-task-webhooks", linger_ms=0)

    def accepts(self, task_id: str, token: str) -> bool:
        value = self.topic.values.get(task_id.encode())
        if value is None:
            return False
        return hmac.compare_digest(json.loads(value)["tokenHash"], _digest(token))

    def call(
        self,
        task_id: str,
        body: Any,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        *,
        trigger: Literal["webhook", "manual"] = "webhook",
        run_as: str | None = None,
    ) -> dict[str, Any]:
        """Request the run and wait for it (VIGIL_TASK_WEBHOOK_WAIT); the answer's body.
        ``run_as``: the key id the run acts as (a run by hand: the caller's)."""
        wait = self.settings.task_webhook_wait
        request_id, at, run = self.run(task_id, body, headers, query, trigger, wait, run_as)
        return response(task_id, trigger, request_id, run, at)

    def run(
        self,
        task_id: str,
        body: Any,
        headers: dict[str, str] | None,
        query: dict[str, str] | None,
        trigger: Literal["webhook", "manual", "route"],
        wait: float,
        run_as: str | None = None,
    ) -> tuple[str, int, dict[str, Any] | None]:
        """Request a run and wait up to ``wait`` seconds: (request id, when, its last record)."""
        request_id = str(uuid.uuid4())
        run_id, at = f"{trigger}:{request_id}", self.clock.ms()
        request = task_request(
            run_id, task_id, trigger, body, at, passed_headers(headers or {}), query, run_as
        )
        watch = RunWatch(self.settings, self.bootstrap, self.codec)
        value = self.codec.encode(self.requests, "TaskRequest", request)
        try:
            self.sink.send(self.requests, key=run_id.encode(), value=value).get(30)
        except KafkaError as exc:
            watch.close()
            raise BrokerError(f"requesting a run of task {task_id} failed: {exc}") from exc
        return request_id, at, watch.wait(run_id, wait)

    def close(self) -> None:
        self.stopping.set()
        self.sink.close()

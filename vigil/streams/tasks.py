"""The stack's task runner (a sink connector): it takes requests from ``tasks.requests``
and runs each task in the sandbox (``connectors.tasks.runner``), one run per run id.

One run per run id: before a run starts, its ``pending`` record is written to
``tasks.runs`` and acknowledged; a runner that starts reads every run id there, so a
request delivered again (a retried producer, a runner that died before committing its
offset) is skipped, never run twice. A run whose runner died keeps its ``pending`` record.
Runs are one at a time per runner process.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from kafka import TopicPartition

from vigil.clock import SYSTEM, Clock
from vigil.config.access import ApiKey
from vigil.config.loader import address_book
from vigil.config.state import SCHEMA, TOPICS
from vigil.connectors.tasks import landlock
from vigil.connectors.tasks.envs import RequirementsError, for_files
from vigil.connectors.tasks.kv import StoreApi
from vigil.connectors.tasks.runner import Limits, RunRecord, run
from vigil.errors import NotFound, VigilError
from vigil.schemas.catalogue import SECRETS_TOPIC
from vigil.schemas.codec import Codec
from vigil.schemas.records import task_request
from vigil.settings import Settings
from vigil.streams.api_keys import read_keys
from vigil.streams.kafka import Followed, commit, consumer, producer, read_compacted, subscribe
from vigil.streams.relayers import Relay, TaskRelayer
from vigil.streams.secrets import with_stored_secrets
from vigil.streams.task_kv import TopicStore
from vigil.streams.task_notify import RunNotices

log = logging.getLogger(__name__)
FINAL = ("success", "error", "timeout", "killed")


def applied_tasks(settings: Settings, bootstrap: str, codec: Codec) -> dict[str, dict[str, Any]]:
    """The applied tasks' specs (config and files), by id."""
    topic = settings.topic(TOPICS["task"])
    raw = read_compacted(settings, bootstrap, topic, read_committed=True)
    return _tasks(raw.items(), topic, codec)


def _tasks(
    items: Iterable[tuple[bytes, bytes]], topic: str, codec: Codec
) -> dict[str, dict[str, Any]]:
    found = {}
    for key, value in items:
        record = codec.decode(value, SCHEMA, where=f"{topic} key {key.decode()!r}")
        if record["action"] == "upsert" and record["spec"]:
            found[record["id"]] = {**json.loads(record["spec"]), "version": record["version"]}
    return found


class TaskRunner:
    """Runs requested tasks until ``stopping``; run in the `vigil runner` process."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        codec: Codec,
        clock: Clock = SYSTEM,
        relay: Relay | None = None,
    ) -> None:
        self.settings, self.bootstrap, self.codec, self.clock = settings, bootstrap, codec, clock
        self.relay = relay  # the relayers tasks send through (context.relayer)
        self.requests, self.runs = settings.topic("tasks.requests"), settings.topic("tasks.runs")
        self.stopping = threading.Event()
        self.claimed = self._claimed()
        self.store = TopicStore(settings, bootstrap, max_items=settings.task_kv_max_items)
        self.sink = producer(settings, bootstrap, client_id="vigil-runner", linger_ms=0)
        self.ran = 0
        if landlock.abi() == 0:
            log.warning("the kernel has no Landlock: task runs can read what vigil's user can")
        # followed, not read per run: a read costs a consumer (~100 ms of every run's start)
        self.tasks = Followed(
            settings, bootstrap, settings.topic(TOPICS["task"]), read_committed=True
        )
        self.sealed = Followed(settings, bootstrap, settings.topic(SECRETS_TOPIC))
        for followed, name in ((self.tasks, "runner-tasks"), (self.sealed, "runner-secrets")):
            threading.Thread(target=followed.follow, name=name, daemon=True).start()

    def _settings(self) -> Settings:
        """The settings with the secrets as stored now: a secret set while the runner runs
        counts from the next run."""
        return with_stored_secrets(self.settings, self.bootstrap, self.sealed.values)

    def _task(self, task_id: str) -> dict[str, Any] | None:
        """The applied task, as followed; one applied a moment ago is read from the topic."""
        key = task_id.encode()
        value = self.tasks.values.get(key)
        if value is not None:
            return _tasks([(key, value)], self.tasks.topic, self.codec).get(task_id)
        return applied_tasks(self.settings, self.bootstrap, self.codec).get(task_id)

    def _claimed(self) -> set[str]:
        """Every run id on ``tasks.runs``: taken, whatever became of the run."""
        return {key.decode() for key in read_compacted(self.settings, self.bootstrap, self.runs)}

    def run(self) -> None:
        requests = consumer(
            self.settings,
            self.bootstrap,
            group_id=self.settings.group("tasks"),
            auto_offset_reset="earliest",
            max_poll_records=1,
            max_poll_interval_ms=20 * 60 * 1000,  # a run may take 15 minutes
            # a runner that died is noticed in 6 s (the broker's least), and its requests
            # go to another
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
            client_id="vigil-runner",
        )
        subscribe(requests, [self.requests])
        try:
            while not self.stopping.is_set():
                for tp, records in requests.poll(timeout_ms=500).items():
                    for record in records:
                        where = f"{tp.topic}[{tp.partition}]@{record.offset}"
                        self.handle(self.codec.decode(record.value, "TaskRequest", where=where))
                    commit(requests)
        finally:
            requests.close()
            self.sink.close()
            self.store.close()
            self.tasks.stopping.set()
            self.sealed.stopping.set()

    def handle(self, request: dict[str, Any]) -> None:
        run_id = request["runId"]
        if run_id in self.claimed:
            log.info("task run %s was taken before: not run again", run_id)
            return
        task = self._task(request["taskId"])
        started = self.clock.ms()
        base = {
            "runId": run_id,
            "taskId": request["taskId"],
            "taskVersion": task["version"] if task else "",
            "trigger": request["trigger"],
            "startedAt": started,
        }
        if task is None or task["config"].get("paused"):
            why = "is paused" if task else "is not applied"
            self._write({**base, **_ended("error", "UnknownTask", f"task {why}", started)})
            return
        self._write({**base, "status": "pending"})  # the run id is taken from here on
        config, settings = task["config"], self._settings()
        try:
            identity = self._identity(request, config)
        except IdentityError as exc:
            self._write({**base, **_ended("error", "IdentityError", str(exc), self.clock.ms())})
            return
        secrets = {n: v.get_secret_value() for n, v in settings.secrets.items()}
        files = {name: base64.b64decode(data) for name, data in task["files"].items()}
        event = {
            "request": {
                "body": json.loads(request["body"]),
                "headers": json.loads(request["headers"]),
                "queryParameters": json.loads(request["queryParameters"]),
            },
            "secrets": secrets,
            "taskId": request["taskId"],
            "taskName": config["name"],
            "runId": run_id,
            "trigger": request["trigger"],
            "contracts": address_book(settings.project_dir),  # the project's, by name
            "runAs": identity.name if identity else None,
        }
        limits = Limits(timeout=config["timeout"], memory_mb=config["memory_mb"])
        about = {**base, "taskName": config["name"], "version": task["version"]}
        notices = RunNotices(settings, self.bootstrap, self.codec, self.sink, about, self.clock)
        try:
            python = for_files(settings.data_dir / "task-envs", files)
        except RequirementsError as exc:
            outcome = RunRecord("error", error_type="RequirementsError", error_message=str(exc))
        else:
            relayer = TaskRelayer(self.relay, config.get("relayer"))
            api = StackApi(self.store, notices, relayer, identity)
            outcome = run(files, event, api, limits, secrets, python)
        ended = {**base, **outcome.ended(self.clock.ms())}
        self._write(ended)
        self.ran += 1
        if outcome.status != "success" and config.get("failure_channels"):
            notices.failed(config["failure_channels"], ended)
        log.info("task %s run %s: %s", request["taskId"], run_id, outcome.status)

    def _identity(self, request: dict[str, Any], config: dict[str, Any]) -> ApiKey | None:
        """The key the run acts as: the caller's (a run by hand through the API), else the
        task's ``run_as`` (by name); None: the run may do everything. IdentityError when
        the key is gone or revoked."""
        wanted_id, wanted_name = request.get("runAs"), config.get("run_as")
        if wanted_id is None and wanted_name is None:
            return None
        keys = read_keys(self.settings, self.bootstrap)
        if wanted_id is not None:
            found = keys.get(wanted_id)
            what = f"the key {wanted_id} that asked for it"
        else:
            named = [k for k in keys.values() if k.name == wanted_name and k.revoked_ms is None]
            found = max(named, key=lambda k: k.created_ms) if named else None
            what = f"run_as key {wanted_name!r}"
        if found is None or found.revoked_ms is not None:
            raise IdentityError(f"the run acts as {what}, which does not exist or is revoked")
        return found

    def _write(self, record: dict[str, Any]) -> None:
        full = {
            "status": "pending",
            "result": None,
            "logs": "",
            "errorType": None,
            "errorMessage": None,
            "durationMs": 0,
            "finishedAt": None,
            **record,
        }
        value = self.codec.encode(self.runs, "TaskRun", full)
        self.sink.send(self.runs, key=record["runId"].encode(), value=value).get(30)
        self.claimed.add(record["runId"])


class IdentityError(VigilError):
    """The key a run acts as does not exist or is revoked."""


class StackApi(StoreApi):
    """A run's API in the stack: the topic-backed store, notifications sent, and the task's
    relayer; with an ``identity`` (the key the run acts as), each call needs its scope."""

    def __init__(
        self,
        store: TopicStore,
        notices: RunNotices,
        relayer: TaskRelayer | None = None,
        identity: ApiKey | None = None,
    ) -> None:
        super().__init__(store)
        self.notices, self.task_relayer = notices, relayer or TaskRelayer(None, None)
        self.identity = identity

    def _may(self, scope: str) -> None:
        if self.identity is not None and not self.identity.allows(scope):
            raise ValueError(
                f"this run acts as key {self.identity.name!r} ({self.identity.key_id}), "
                f"which lacks the scope {scope}"
            )

    def kv_get(self, key: str) -> str | None:
        self._may("kv:read")
        return super().kv_get(key)

    def kv_put(self, key: str, value: str) -> None:
        self._may("kv:write")
        super().kv_put(key, value)

    def kv_delete(self, key: str) -> None:
        self._may("kv:write")
        super().kv_delete(key)

    def relayer(self, call: str, body: dict[str, Any]) -> Any:
        self._may("relayer:send")
        return self.task_relayer.call(call, body)

    def notify(self, alias: str, subject: str, message: str) -> str | None:
        self._may("notify:send")
        return self.notices.send(alias, subject, message)

    def metric(self, alias: str, name: str, value: float) -> str | None:
        self._may("notify:send")
        return self.notices.metric(alias, name, value)


def _ended(status: str, error_type: str, message: str, at: int) -> dict[str, Any]:
    return {"status": status, "errorType": error_type, "errorMessage": message, "finishedAt": at}


def request_run(
    settings: Settings, bootstrap: str, codec: Codec, task_id: str, body: Any, clock: Clock = SYSTEM
) -> str:
    """Ask the stack to run ``task_id`` by hand; returns the run id. An unknown task is
    NotFound naming the applied ones."""
    known = applied_tasks(settings, bootstrap, codec)
    if task_id not in known:
        raise NotFound(
            f"no applied task {task_id!r}; applied: {', '.join(sorted(known)) or 'none'}"
        )
    run_id = f"manual:{uuid.uuid4().hex}"
    request = task_request(run_id, task_id, "manual", body, clock.ms())
    topic = settings.topic("tasks.requests")
    sink = producer(settings, bootstrap, client_id="vigil-tasks", linger_ms=0)
    try:
        sink.send(
            topic, key=run_id.encode(), value=codec.encode(topic, "TaskRequest", request)
        ).get(30)
    finally:
        sink.close()
    return run_id


class RunWatch:
    """Reads ``tasks.runs`` from its end: made before a request is sent, it sees its run."""

    def __init__(self, settings: Settings, bootstrap: str, codec: Codec) -> None:
        self.codec, self.topic = codec, settings.topic("tasks.runs")
        self.reader = consumer(settings, bootstrap, client_id="vigil-tasks-watch")
        parts = [
            TopicPartition(self.topic, p)
            for p in self.reader.partitions_for_topic(self.topic) or ()
        ]
        self.reader.assign(parts)
        self.reader.seek_to_end(*parts)
        for tp in parts:
            self.reader.position(tp)  # fixes the end now, before the request goes out

    def wait(self, run_id: str, timeout: float) -> dict[str, Any] | None:
        """The run's final record, or its last one (pending) when ``timeout`` passes."""
        last: dict[str, Any] | None = None
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for records in self.reader.poll(timeout_ms=200).values():
                    for record in records:
                        if record.key == run_id.encode():
                            last = self.codec.decode(record.value, "TaskRun", where=self.topic)
                            if last["status"] in FINAL:
                                return last
            return last
        finally:
            self.close()

    def close(self) -> None:
        self.reader.close()

"""The filter runner (in `vigil runner`): match batches of monitors with a custom filter
come from ``monitor.filter-requests``; each goes through its filter in the task sandbox, 25
matches per call (``processors.filters``), and what the filter keeps goes on, metadata
attached, to ``monitor.matches`` (history) and ``monitor.match-batches`` (notification).

A slow filter delays only its own monitor: every monitor has a lane of its own (a
single-thread executor, so one monitor's batches stay in order), and the consumer keeps
polling while lanes work. An offset is committed once every batch before it on its
partition is done, so a runner that dies re-filters what it had not finished (the
notifier's delivered keys keep a match from being sent twice).

Each call is a run on ``tasks.runs`` (trigger ``filter``, run id ``filter:<batch>:<n>``).
An error, a timeout or an answer of the wrong shape keeps no match; the run is recorded as
failed with its reason, and a project task's failure channels hear of it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kafka.structs import OffsetAndMetadata

from vigil import metrics
from vigil.clock import SYSTEM, Clock
from vigil.config.state import SCHEMA, TOPICS
from vigil.connectors.tasks.envs import RequirementsError, for_files
from vigil.connectors.tasks.kv import StoreApi
from vigil.connectors.tasks.runner import Limits, RunRecord, run, run_record
from vigil.processors.filters import FilterAnswerError, kept, request_body, requests
from vigil.schemas.codec import Codec
from vigil.schemas.records import Match, MatchBatch
from vigil.settings import Settings
from vigil.streams.kafka import Followed, consumer, producer, subscribe
from vigil.streams.task_kv import TopicStore
from vigil.streams.task_notify import RunNotices

log = logging.getLogger(__name__)
INLINE_LIMITS = Limits(timeout=30.0, memory_mb=256)  # a filter given as a path


class FilterRunner:
    """Filters batches until ``stopping``; run in a thread of the `vigil runner` process."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        codec: Codec,
        store: TopicStore,
        clock: Clock = SYSTEM,
    ) -> None:
        self.settings, self.bootstrap, self.codec, self.clock = settings, bootstrap, codec, clock
        self.store = store
        self.source = settings.topic("monitor.filter-requests")
        self.matches_topic = settings.topic("monitor.matches")
        self.batches_topic = settings.topic("monitor.match-batches")
        self.runs_topic = settings.topic("tasks.runs")
        self.monitors = Followed(
            settings, bootstrap, settings.topic(TOPICS["monitor"]), read_committed=True
        )
        self.tasks = Followed(
            settings, bootstrap, settings.topic(TOPICS["task"]), read_committed=True
        )
        self.sink = producer(settings, bootstrap, client_id="vigil-filters", linger_ms=5)
        self.stopping = threading.Event()
        self.lanes: dict[str, ThreadPoolExecutor] = {}
        self.filtered = 0

    def run(self) -> None:
        for followed in (self.monitors, self.tasks):
            threading.Thread(target=followed.follow, daemon=True).start()
        reader = consumer(
            self.settings,
            self.bootstrap,
            group_id=self.settings.group("filters"),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_interval_ms=20 * 60 * 1000,
            client_id="vigil-filters",
        )
        subscribe(reader, [self.source])
        # partition → offset → its batch's future, in the order they came
        pending: dict[Any, dict[int, Future[None]]] = defaultdict(dict)
        try:
            while not self.stopping.is_set():
                for tp, records in reader.poll(timeout_ms=200).items():
                    for record in records:
                        where = f"{tp.topic}[{tp.partition}]@{record.offset}"
                        batch = self.codec.decode(record.value, "MatchBatch", where=where)
                        lane = self._lane(batch["monitorId"])
                        pending[tp][record.offset] = lane.submit(self._guarded, batch, where)
                self._commit(reader, pending)
        finally:
            for lane in self.lanes.values():
                lane.shutdown(wait=True, cancel_futures=True)
            self._commit(reader, pending)
            reader.close()
            self.sink.close()
            for followed in (self.monitors, self.tasks):
                followed.stopping.set()

    def _lane(self, monitor_id: str) -> ThreadPoolExecutor:
        if monitor_id not in self.lanes:
            self.lanes[monitor_id] = ThreadPoolExecutor(1, thread_name_prefix="filter")
        return self.lanes[monitor_id]

    @staticmethod
    def _commit(reader: Any, pending: dict[Any, dict[int, Future[None]]]) -> None:
        """Commit, per partition, past the batches done with nothing unfinished before them."""
        done: dict[Any, Any] = {}
        for tp, futures in pending.items():
            last = None
            for offset in sorted(futures):
                if not futures[offset].done():
                    break
                last = offset
                del futures[offset]
            if last is not None:
                done[tp] = OffsetAndMetadata(last + 1, "", -1)
        if done:
            reader.commit(done)

    def _guarded(self, batch: MatchBatch, where: str) -> None:
        try:
            self.handle(batch)
        except Exception:  # one bad batch must not stop the lane
            log.exception("%s: filtering failed; the batch is dropped", where)

    def handle(self, batch: MatchBatch) -> None:
        """Filter one batch and send on what its filter keeps."""
        spec = self._monitor(batch["monitorId"])
        if spec is None:
            log.error("batch %s: monitor %s is not applied", batch["id"], batch["monitorId"])
            return
        found = self._filter(spec)
        if found is None:
            log.error("batch %s: filter %r is not applied", batch["id"], spec["config"]["filter"])
            return
        task_id, files, limits, failure_channels, version = found
        chosen: list[Match] = []
        abi = list(spec.get("abi") or [])
        for number, group in enumerate(requests(list(batch["matches"]))):
            run_id = f"filter:{batch['id']}:{number}"
            chosen += self._call(
                run_id, task_id, version, files, limits, failure_channels, group, abi
            )
        for match in chosen:
            metrics.MATCHES.labels(match["monitor"]["id"]).inc()
            value = self.codec.encode(self.matches_topic, "Match", match)
            self.sink.send(self.matches_topic, key=match["monitor"]["id"].encode(), value=value)
        if chosen:
            out = {**batch, "matches": chosen}
            value = self.codec.encode(self.batches_topic, "MatchBatch", out)
            self.sink.send(self.batches_topic, key=batch["monitorId"].encode(), value=value)
        self.sink.flush(30)
        self.filtered += 1
        log.info(
            "batch %s: the filter kept %d of %d match(es)",
            batch["id"],
            len(chosen),
            len(batch["matches"]),
        )

    def _call(
        self,
        run_id: str,
        task_id: str,
        version: str,
        files: dict[str, bytes],
        limits: Limits,
        failure_channels: list[str],
        group: list[Match],
        abi: list[Any],
    ) -> list[Match]:
        started = self.clock.ms()
        secrets = {n: v.get_secret_value() for n, v in self.settings.secrets.items()}
        event = {
            "request": {"body": request_body(group, abi), "headers": {}, "queryParameters": {}},
            "secrets": secrets,
            "taskId": task_id,
            "taskName": task_id,
            "runId": run_id,
            "trigger": "filter",
        }
        about = {
            "runId": run_id,
            "taskId": task_id,
            "taskName": task_id,
            "version": version,
            "trigger": "filter",
        }
        notices = RunNotices(self.settings, self.bootstrap, self.codec, self.sink, about)
        try:
            python = for_files(self.settings.data_dir / "task-envs", files)
            outcome = run(files, event, StoreApi(self.store), limits, secrets, python)
        except RequirementsError as exc:
            outcome = RunRecord("error", error_type="RequirementsError", error_message=str(exc))
        ok = outcome.status == "success"
        chosen: list[Match] = []
        if ok:
            try:
                chosen = kept(group, outcome.result)
            except FilterAnswerError as exc:
                ok, outcome = False, outcome.failed("FilterAnswerError", str(exc))
        record = run_record(run_id, task_id, version, "filter", outcome, started, self.clock.ms())
        value = self.codec.encode(self.runs_topic, "TaskRun", record)
        self.sink.send(self.runs_topic, key=run_id.encode(), value=value)
        if not ok:
            log.warning("filter run %s: %s: %s", run_id, outcome.error_type, outcome.error_message)
            if failure_channels:
                notices.failed(failure_channels, record)
        return chosen

    def _monitor(self, monitor_id: str) -> dict[str, Any] | None:
        value = self.monitors.values.get(monitor_id.encode())
        if value is None:
            return None
        record = self.codec.decode(value, SCHEMA, where=f"monitor {monitor_id}")
        spec: dict[str, Any] | None = json.loads(record["spec"]) if record["spec"] else None
        return spec

    def _filter(
        self, spec: dict[str, Any]
    ) -> tuple[str, dict[str, bytes], Limits, list[str], str] | None:
        """(task id, files, limits, failure channels, version) of the monitor's filter."""
        named = spec["config"]["filter"]
        inline = spec.get("filterFiles")
        if inline:
            files = {name: base64.b64decode(data) for name, data in inline.items()}
            return f"filter:{named}", files, INLINE_LIMITS, [], ""
        value = self.tasks.values.get(named.encode())
        if value is None:
            return None
        record = self.codec.decode(value, SCHEMA, where=f"task {named}")
        if record["action"] != "upsert" or not record["spec"]:
            return None
        task = json.loads(record["spec"])
        files = {name: base64.b64decode(data) for name, data in task["files"].items()}
        config = task["config"]
        limits = Limits(timeout=config["timeout"], memory_mb=config["memory_mb"])
        return named, files, limits, list(config.get("failure_channels", [])), record["version"]

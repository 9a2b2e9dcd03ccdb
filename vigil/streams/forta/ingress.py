"""The Forta Local Mode webhook: authenticate a scan node's batch, check it whole, publish it.

Nothing of a batch is published unless all of it is valid: a bad alert answers 400 with the
field path, a bad token 401, an oversized body or batch 413.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError

from vigil.clock import SYSTEM, Clock
from vigil.errors import BrokerError, VigilError
from vigil.schemas.codec import Codec
from vigil.schemas.forta import AlertError, alert_record
from vigil.schemas.records import FortaAlert
from vigil.settings import Settings
from vigil.streams.forta.auth import AuthError, UsedTokens, authenticate
from vigil.streams.kafka import producer

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_ALERTS = 1000


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def _number(value: Any, path: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AlertError(path, f"expected a number, got {type(value).__name__}")
    return float(value)


def metric_records(metrics: Any, scan_node: str | None, received_at: int) -> list[dict[str, Any]]:
    """FortaBotMetric records of a batch's ``metrics`` (one per bot and metric name)."""
    if metrics is None:
        return []
    if not isinstance(metrics, list):
        raise AlertError("metrics", "expected a list")
    records = []
    for i, entry in enumerate(metrics):
        if not isinstance(entry, dict) or not isinstance(entry.get("botId"), str):
            raise AlertError(f"metrics[{i}]", "expected an object with a botId string")
        for j, summary in enumerate(entry.get("metrics") or []):
            path = f"metrics[{i}].metrics[{j}]"
            if not isinstance(summary, dict) or not isinstance(summary.get("name"), str):
                raise AlertError(path, "expected an object with a name string")
            records.append(
                {
                    "botId": entry["botId"].lower(),
                    "timestamp": str(entry.get("timestamp") or ""),
                    "name": summary["name"],
                    **{
                        key: _number(summary.get(key), f"{path}.{key}")
                        for key in ("count", "max", "average", "sum", "p95")
                    },
                    "scanNode": scan_node,
                    "receivedAt": received_at,
                }
            )
    return records


class LocalModeIngress:
    """Checks Local Mode batches and hands their records to ``publish`` (all or nothing)."""

    def __init__(
        self,
        scan_nodes: frozenset[str],
        shared_token: str | None,
        publish: Callable[[list[FortaAlert], list[dict[str, Any]]], None],
        *,
        max_alerts: int = MAX_ALERTS,
        clock_skew: float = 30.0,
        clock: Clock = SYSTEM,
    ) -> None:
        self.scan_nodes, self.shared_token, self.publish = scan_nodes, shared_token, publish
        self.max_alerts, self.clock_skew, self.clock = max_alerts, clock_skew, clock
        self.used_tokens = UsedTokens()

    @property
    def configured(self) -> bool:
        return bool(self.scan_nodes) or self.shared_token is not None

    def accept(self, authorization: str | None, body: bytes) -> Answer:
        if not self.configured:
            return Answer(
                503,
                {
                    "reason": "Local Mode ingress is off: set VIGIL_FORTA_SCAN_NODES "
                    "or VIGIL_FORTA_WEBHOOK_TOKEN"
                },
            )
        if len(body) > MAX_BODY_BYTES:
            return Answer(413, {"reason": f"body over {MAX_BODY_BYTES} bytes"})
        now = self.clock.time()
        try:
            scan_node = authenticate(
                authorization,
                scan_nodes=self.scan_nodes,
                shared_token=self.shared_token,
                now=now,
                skew=self.clock_skew,
                used=self.used_tokens,
            )
        except AuthError as exc:
            return Answer(401, {"reason": str(exc)})
        try:
            batch = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return Answer(400, {"reason": f"body: not JSON: {exc}"})
        if not isinstance(batch, dict):
            return Answer(400, {"reason": "body: expected an AlertBatch object"})
        alerts = batch.get("alerts") or []
        if not isinstance(alerts, list):
            return Answer(400, {"reason": "alerts: expected a list"})
        if len(alerts) > self.max_alerts:
            return Answer(
                413, {"reason": f"alerts: {len(alerts)} over the {self.max_alerts} limit"}
            )
        received = int(now * 1000)
        try:
            records = [
                alert_record(
                    a,
                    origin="local-mode",
                    received_at=received,
                    scan_node=scan_node,
                    where=f"alerts[{i}]",
                )
                for i, a in enumerate(alerts)
            ]
            metrics = metric_records(batch.get("metrics"), scan_node, received)
        except AlertError as exc:
            return Answer(400, {"reason": str(exc)})
        try:
            self.publish(records, metrics)
        except VigilError as exc:
            return Answer(502, {"reason": f"alerts not recorded: {exc}"})
        return Answer(200, {"accepted": len(records), "metrics": len(metrics)})


def kafka_publisher(
    settings: Settings, bootstrap: str, codec: Codec
) -> Callable[[list[FortaAlert], list[dict[str, Any]]], None]:
    """``publish`` for the ingress: alerts keyed by hash, metrics by bot, acknowledged."""
    sink = producer(settings, bootstrap, client_id="vigil-forta-ingress")
    alerts_topic, metrics_topic = settings.topic("forta.alerts"), settings.topic("forta.metrics")

    def publish(alerts: list[FortaAlert], metrics: list[dict[str, Any]]) -> None:
        try:
            sent = [
                sink.send(
                    alerts_topic,
                    key=alert["hash"].encode(),
                    value=codec.encode(alerts_topic, "FortaAlert", alert),
                )
                for alert in alerts
            ] + [
                sink.send(
                    metrics_topic,
                    key=metric["botId"].encode(),
                    value=codec.encode(metrics_topic, "FortaBotMetric", metric),
                )
                for metric in metrics
            ]
            sink.flush(timeout=30)
            for future in sent:
                future.get(timeout=1)
        except KafkaError as exc:
            raise BrokerError(f"publishing {len(alerts)} Forta alerts failed: {exc}") from exc

    return publish

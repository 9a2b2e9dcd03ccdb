"""The Forta API poller: asks the GraphQL ``alerts`` query for new alerts, page by page.

Each poll asks for alerts created since the checkpoint (minus an overlap, as alerts arrive
late), follows ``pageInfo.endCursor`` while ``hasNextPage``, and emits every alert it has not
emitted before (by hash) to the Forta alert topic. The checkpoint, on the compacted
checkpoint topic under ``forta:<name>``, holds the newest ``createdAt`` seen and the hashes
seen at that instant, so a restart neither repeats nor skips alerts.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from typing import Any

import httpx

from vigil.clock import SYSTEM, Clock
from vigil.config.models import FortaApiConfig
from vigil.errors import VigilError
from vigil.schemas.codec import Codec
from vigil.schemas.forta import AlertError, alert_record, created_ms
from vigil.settings import Settings
from vigil.streams.kafka import BatchProducer, read_compacted

log = logging.getLogger(__name__)
QUERY = """query vigilAlerts($input: AlertsInput) {
  alerts(input: $input) {
    pageInfo { hasNextPage endCursor { alertId blockNumber } }
    alerts {
      hash alertId name description protocol findingType severity metadata addresses
      createdAt scanNodeCount chainId
      source {
        transactionHash
        bot { id image reference }
        block { number hash timestamp chainId }
      }
    }
  }
}"""
OVERLAP_MS = 5 * 60 * 1000  # alerts reach the API late: ask again for the last minutes


class FortaApiError(VigilError):
    """The Forta API answered an error, or something that is not an alerts page."""


class FortaPoller:
    """Polls one Forta API source and emits its new alerts; run() loops until ``stopping``."""

    def __init__(
        self,
        settings: Settings,
        config: FortaApiConfig,
        sink: BatchProducer,
        codec: Codec,
        bootstrap: str,
        *,
        client: httpx.Client | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.config, self.sink, self.codec, self.bootstrap = config, sink, codec, bootstrap
        self.settings = settings
        self.clock = clock
        self.name = f"forta:{config.name}"
        self.alerts_topic = settings.topic("forta.alerts")
        self.checkpoint_topic = settings.topic("chain.checkpoints")
        secret = settings.secrets.get(config.api_key_secret) if config.api_key_secret else None
        self._api_key = secret.get_secret_value() if secret else None
        self._http = client or httpx.Client(timeout=config.timeout)
        self.stopping = threading.Event()
        self.emitted = 0
        self.newest_ms = 0
        self.seen_at_newest: set[str] = set()

    def load_checkpoint(self) -> None:
        raw = read_compacted(self.settings, self.bootstrap, self.checkpoint_topic).get(
            self.name.encode()
        )
        if raw is None:
            return
        record = self.codec.decode(raw, "Checkpoint", where=self.checkpoint_topic)
        self.newest_ms = int(record["number"])
        self.seen_at_newest = set(json.loads(record["hash"] or "[]"))

    def _save_checkpoint(self) -> None:
        record = {
            "network": self.name,
            "number": self.newest_ms,
            "hash": json.dumps(sorted(self.seen_at_newest)),
            "at": self.clock.ms(),
        }
        value = self.codec.encode(self.checkpoint_topic, "Checkpoint", record)
        self.sink.send(self.checkpoint_topic, key=self.name.encode(), value=value)
        self.sink.flush()

    def _page(self, after: dict[str, Any] | None, since_ms: int) -> dict[str, Any]:
        config = self.config
        query_input: dict[str, Any] = {"first": config.page_size, "createdSince": since_ms}
        if config.bot_ids:
            query_input["bots"] = list(config.bot_ids)
        if config.addresses:
            query_input["addresses"] = list(config.addresses)
        if config.chain_id is not None:
            query_input["chainId"] = config.chain_id
        if after is not None:
            query_input["after"] = after
        headers = {"Content-Type": "application/json", "User-Agent": "vigil"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            response = self._http.post(
                config.url,
                json={"query": QUERY, "variables": {"input": query_input}},
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise FortaApiError(f"{config.url}: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise FortaApiError(f"{config.url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise FortaApiError(f"{config.url}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
            if body.get("errors"):
                raise FortaApiError(f"{config.url}: {body['errors'][0].get('message')}")
            page: dict[str, Any] = body["data"]["alerts"]
            page["alerts"] = page.get("alerts") or []
            return page
        except (ValueError, KeyError, TypeError, AttributeError):
            raise FortaApiError(
                f"{config.url}: not an alerts page: {response.text[:200]}"
            ) from None

    def poll_once(self) -> int:
        """One poll through every page; returns the alerts emitted."""
        now = self.clock.ms()
        if self.newest_ms:
            since = max(now - self.newest_ms + OVERLAP_MS, 0)
        else:
            since = self.config.lookback_seconds * 1000
        after = None
        emitted = 0
        newest, at_newest = self.newest_ms, set(self.seen_at_newest)
        while not self.stopping.is_set():
            page = self._page(after, since)
            for i, alert in enumerate(page["alerts"]):
                try:
                    record = alert_record(
                        alert, origin="api", received_at=now, where=f"alerts[{i}]"
                    )
                except AlertError as exc:
                    log.error("forta %s: skipping an alert: %s", self.config.name, exc)
                    continue
                created = created_ms(record["createdAt"])
                if created < self.newest_ms or (
                    created == self.newest_ms and record["hash"] in self.seen_at_newest
                ):
                    continue  # emitted before the checkpoint
                if created == newest and record["hash"] in at_newest:
                    continue  # a repeat within this poll
                value = self.codec.encode(self.alerts_topic, "FortaAlert", record)
                self.sink.send(self.alerts_topic, key=record["hash"].encode(), value=value)
                emitted += 1
                if created > newest:
                    newest, at_newest = created, {record["hash"]}
                elif created == newest:
                    at_newest.add(record["hash"])
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                break
            after = info["endCursor"]
        if emitted:
            self.sink.flush()
            self.newest_ms, self.seen_at_newest = newest, at_newest
            self._save_checkpoint()
            self.emitted += emitted
        return emitted

    def run(self) -> None:
        """Poll every ``poll_interval``; errors back off (with jitter) and never end the loop."""
        self.load_checkpoint()
        failures = 0
        while not self.stopping.is_set():
            try:
                count = self.poll_once()
                failures = 0
                if count:
                    log.info("forta %s: %d new alerts", self.config.name, count)
                wait = self.config.poll_interval
            except FortaApiError as exc:
                failures += 1
                wait = min(300.0, 2.0**failures) * random.uniform(0.5, 1.0)
                log.warning("forta %s: %s; retrying in %.1f s", self.config.name, exc, wait)
            self.stopping.wait(wait)
        self._http.close()

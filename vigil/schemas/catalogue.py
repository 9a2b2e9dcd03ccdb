"""The topic catalogue: every topic vigil writes, with key, schema, partitions and retention."""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 3600 * 1000
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a full block with receipts can exceed Kafka's 1 MB


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name after the prefix, what its key is, and how it is kept."""

    suffix: str
    schema: str
    key: str
    doc: str
    writer: str  # which of vigil's processes and commands write it
    spread: bool = False  # VIGIL_KAFKA_PARTITIONS partitions, else one
    compacted: bool = False
    retention_ms: int = 7 * DAY_MS
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def order(self) -> str:
        """What order a subscriber sees the records in."""
        if self.suffix in CO_PARTITIONED[:2]:
            return "in order per network (per partition with spread: true)"
        if self.compacted:
            return "in order per key; the latest per key is kept"
        if not self.spread:
            return "one partition: in the order written"
        return "in order per key (the key picks the partition)"

    def partitions(self, spread: int) -> int:
        """Partitions at creation: ``spread`` (VIGIL_KAFKA_PARTITIONS) for spread topics."""
        return spread if self.spread else 1

    def configs(self) -> dict[str, str]:
        """Topic configuration given to the broker at creation."""
        conf = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
        if self.compacted:
            conf["cleanup.policy"] = "compact"
        else:
            conf["retention.ms"] = str(self.retention_ms)
        conf.update(self.extra)
        return conf


CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(
        "chain.blocks",
        "Block",
        key="network (network:number for a network with spread: true)",
        doc="one record per block with all transactions, receipts and logs; in order per "
        "network, or spread over the partitions by number; the header vigil-tx-index lists "
        "each transaction's addresses and byte span (vigil.schemas.tx_index), so a reader "
        "can decode only the transactions it wants",
        spread=True,
        writer="vigil ingest (and vigil backfill)",
    ),
    TopicSpec(
        "chain.transactions",
        "Transaction",
        key="network:tx_hash",
        doc="one record per transaction (receipt and logs inside), for subscribers and history",
        spread=True,
        writer="vigil ingest (and vigil backfill)",
    ),
    TopicSpec(
        "chain.reorgs",
        "Retraction",
        key="as chain.blocks",
        doc="one record per orphaned block, on its block's partition (same key), in the order "
        "the ingester found them",
        retention_ms=365 * DAY_MS,
        spread=True,
        writer="vigil ingest (and vigil backfill --reorg)",
    ),
    TopicSpec(
        "chain.heads",
        "Checkpoint",
        key="network",
        doc="the highest block emitted per network, sent to every partition after each block: "
        "each worker releases the match batches it holds for confirmations",
        spread=True,
        retention_ms=DAY_MS,
        writer="vigil ingest",
    ),
    TopicSpec(
        "chain.checkpoints",
        "Checkpoint",
        key="network",
        doc="last block fully emitted per network (compacted)",
        compacted=True,
        writer="vigil ingest (and vigil backfill --reorg)",
    ),
    TopicSpec(
        "forta.alerts",
        "FortaAlert",
        key="alert_hash",
        doc="Forta alerts from the API poller and the Local Mode webhook (repeats possible)",
        spread=True,
        retention_ms=30 * DAY_MS,
        writer="vigil ingest (Forta API poller), vigil serve (Local Mode webhook)",
    ),
    TopicSpec(
        "forta.metrics",
        "FortaBotMetric",
        key="bot_id",
        doc="bot metric summaries reported by scan nodes in Local Mode",
        retention_ms=30 * DAY_MS,
        writer="vigil serve (Local Mode webhook)",
    ),
    TopicSpec(
        "monitor.matches",
        "Match",
        key="monitor_id",
        doc="one record per (monitor, transaction) match",
        spread=True,
        retention_ms=30 * DAY_MS,
        writer="vigil worker; vigil runner for monitors with a custom filter",
    ),
    TopicSpec(
        "monitor.match-batches",
        "MatchBatch",
        key="monitor_id",
        doc="the matches of one monitor in one block, for notification",
        spread=True,
        writer="vigil worker; vigil runner for monitors with a custom filter",
    ),
    TopicSpec(
        "monitor.filter-requests",
        "MatchBatch",
        key="monitor_id",
        doc="match batches of monitors with a custom filter, before it: the runner filters "
        "them onto monitor.matches and monitor.match-batches",
        spread=True,
        retention_ms=7 * DAY_MS,
        writer="vigil worker",
    ),
    TopicSpec(
        "monitor.suppressed",
        "Suppressed",
        key="monitor_id",
        doc="matches that notified no one (alert threshold not reached, or within the timeout)",
        spread=True,
        retention_ms=30 * DAY_MS,
        writer="vigil worker",
    ),
    TopicSpec(
        "notify.deliveries",
        "Delivery",
        key="delivery_id",
        doc="one record per (match, channel) delivery outcome",
        spread=True,
        retention_ms=30 * DAY_MS,
        writer="vigil worker; vigil runner (context.notify)",
    ),
    TopicSpec(
        "dlq",
        "DeadLetter",
        key="record id",
        doc="records that failed, and deliveries that failed after their last retry (resendable)",
        retention_ms=30 * DAY_MS,
        writer="vigil worker, vigil runner",
    ),
    TopicSpec(
        "config.monitors",
        "ConfigChange",
        key="monitor_id",
        doc="monitor changes from `vigil apply`, pause and resume; latest per id (compacted)",
        compacted=True,
        writer="vigil apply, the API (PUT/DELETE, pause, resume)",
    ),
    TopicSpec(
        "tasks.requests",
        "TaskRequest",
        key="run_id",
        doc="requests to run a task (manual, schedule, webhook, monitor); one run per run id",
        spread=True,
        writer="vigil serve (manual and webhook runs), vigil worker (monitor triggers), "
        "vigil runner (schedules)",
    ),
    TopicSpec(
        "scheduler.ticks",
        "Tick",
        key="tick",
        doc="the scheduler's ticks, every VIGIL_TICK_INTERVAL seconds; schedules match them",
        retention_ms=DAY_MS,
        writer="vigil runner (the ticker that holds the lead)",
    ),
    TopicSpec(
        "tasks.runs",
        "TaskRun",
        key="run_id",
        doc="task runs: pending when started, then how each ended (secrets redacted)",
        spread=True,
        retention_ms=30 * DAY_MS,
        writer="vigil runner; vigil worker (before-notify hooks)",
    ),
    TopicSpec(
        "config.tasks",
        "ConfigChange",
        key="task_id",
        doc="task changes from `vigil apply` (config and code); latest per id (compacted)",
        compacted=True,
        writer="vigil apply, the API (PUT/DELETE)",
    ),
    TopicSpec(
        "tasks.versions",
        "ConfigChange",
        key="task_id:version",
        doc="every version of every task, kept (compacted by version): a run names its own",
        compacted=True,
        writer="vigil apply, the API (PUT)",
    ),
    TopicSpec(
        "relayer.requests",
        "RelayerRequest",
        key="relayer_id",
        doc="sends and replacements asked of a relayer, in order; its owner does each once",
        retention_ms=30 * DAY_MS,
        writer="vigil serve (Relay API), vigil runner (tasks' context.relayer)",
    ),
    TopicSpec(
        "relayer.transactions",
        "RelayerTransaction",
        key="relayer_id",
        doc="every relayer transaction after each change of status, in order per relayer; "
        "the owner rebuilds its nonces from it",
        retention_ms=365 * DAY_MS,
        writer="vigil runner (the relayer owner)",
    ),
    TopicSpec(
        "replays",
        "ReplayMatch",
        key="replay_id",
        doc="the matches each `vigil replay` found, tagged with its replay id (a dry run "
        "notifies no one; --notify sends through monitor.match-batches)",
        spread=True,
        retention_ms=30 * DAY_MS,
        writer="vigil replay",
    ),
    TopicSpec(
        "config.channels",
        "ConfigChange",
        key="channel_id",
        doc="notification channel changes from `vigil apply`; latest per id (compacted)",
        compacted=True,
        writer="vigil apply, the API (PUT/DELETE)",
    ),
)

# read together by the worker's agents: their partition counts must be equal
CO_PARTITIONED = ("chain.blocks", "chain.reorgs", "chain.heads")
REGISTRY_TOPIC = "_schemas"
API_KEYS_TOPIC = "_api-keys"  # hashes of API keys (streams.api_keys), JSON, compacted
SECRETS_TOPIC = "_secrets"  # secrets sealed with the operator's key (streams.secrets), compacted
TASK_KV_TOPIC = "_task-kv"  # the tasks' key-value store (streams.task_kv), compacted
TASK_WEBHOOKS_TOPIC = "_task-webhooks"  # hashes of task webhook tokens (streams.task_webhooks)
RELAYERS_TOPIC = "_relayers"  # relayers (streams.relayers), JSON, compacted
RELAYER_KEYS_TOPIC = "_relayer-keys"  # their signing keys, sealed with the operator's key
TICKER_CLAIMS_TOPIC = "_ticker-claims"  # who ticks (streams.scheduler): first claim wins, JSON
INTERNAL_TOPICS = (
    REGISTRY_TOPIC,
    API_KEYS_TOPIC,
    SECRETS_TOPIC,
    TASK_KV_TOPIC,
    TASK_WEBHOOKS_TOPIC,
    TICKER_CLAIMS_TOPIC,
    RELAYERS_TOPIC,
    RELAYER_KEYS_TOPIC,
)


def spec(suffix: str) -> TopicSpec:
    """The catalogue entry for ``suffix``."""
    for entry in CATALOGUE:
        if entry.suffix == suffix:
            return entry
    raise KeyError(f"no topic {suffix!r} in the catalogue")

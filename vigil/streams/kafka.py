"""Kafka plumbing shared by every process: topic creation, producers, compacted-topic reads."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
)

from vigil.errors import BrokerError
from vigil.schemas.catalogue import CATALOGUE, CO_PARTITIONED, INTERNAL_TOPICS, MAX_MESSAGE_BYTES
from vigil.settings import Settings

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings, bootstrap: str) -> list[str]:
    """Create every catalogue topic that is missing, with VIGIL_KAFKA_REPLICATION_FACTOR
    replicas and VIGIL_KAFKA_MIN_INSYNC_REPLICAS; returns the names created."""
    replicas = settings.kafka_replication_factor
    durability = {"min.insync.replicas": str(settings.kafka_min_insync_replicas)}
    wanted = [
        NewTopic(
            settings.topic(t.suffix),
            t.partitions(settings.kafka_partitions),
            replicas,
            topic_configs=t.configs() | durability,
        )
        for t in CATALOGUE
    ]
    wanted.extend(
        NewTopic(
            settings.topic(name),
            1,
            replicas,
            topic_configs={"cleanup.policy": "compact"} | durability,
        )
        for name in INTERNAL_TOPICS
    )
    admin = admin_client(settings, bootstrap, client_id="vigil-admin")
    try:
        brokers = len(admin.describe_cluster().get("brokers") or [])
        if brokers and replicas > brokers:
            raise BrokerError(
                f"VIGIL_KAFKA_REPLICATION_FACTOR is {replicas}, but the cluster at {bootstrap} "
                f"has {brokers} broker(s); set it to {brokers} or less"
            )
        if settings.kafka_min_insync_replicas > replicas:
            raise BrokerError(
                f"VIGIL_KAFKA_MIN_INSYNC_REPLICAS ({settings.kafka_min_insync_replicas}) is above "
                f"VIGIL_KAFKA_REPLICATION_FACTOR ({replicas}): no write could be acknowledged"
            )
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            # another process may win the race; the topic is then what we want
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        _wait_for_metadata(admin, [t.name for t in missing])
        _check_co_partitioned(admin, settings)
        return [t.name for t in missing]
    finally:
        admin.close()


def _check_co_partitioned(admin: KafkaAdminClient, settings: Settings) -> None:
    """The worker reads a block, its retraction and the heads from the same partition
    number: topics made at different VIGIL_KAFKA_PARTITIONS would split them."""
    names = [settings.topic(suffix) for suffix in CO_PARTITIONED]
    counts = {d["name"]: len(d.get("partitions") or []) for d in admin.describe_topics(names)}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{name} has {count}" for name, count in counts.items())
        raise BrokerError(
            f"these topics must have as many partitions as each other: {listed}; add "
            "partitions to the smaller ones (kafka-topics.sh --alter --partitions N)"
        )


def _wait_for_metadata(admin: KafkaAdminClient, names: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        if set(names) <= set(admin.list_topics()):
            return
        time.sleep(0.2)


_LOGGED_IN: set[tuple[str, str | None, object]] = set()  # logins this process has checked


def _connect(kind: type[Any], settings: Settings, bootstrap: str, options: dict[str, Any]) -> Any:
    """A kafka-python client with the security settings in force; a refused login or an
    unreachable broker is a BrokerError that says which."""
    login = (bootstrap, settings.kafka_sasl_username, settings.kafka_sasl_password)
    if settings.kafka_security_protocol.startswith("SASL_") and login not in _LOGGED_IN:
        check_login(settings, bootstrap)  # named in a second, not after kafka-python's 30 s
        _LOGGED_IN.add(login)
    try:
        return kind(bootstrap_servers=bootstrap, **settings.kafka_options, **options)
    except (KafkaError, OSError) as exc:
        raise BrokerError(
            f"cannot reach Kafka at {bootstrap} ({settings.kafka_security_protocol}): {exc}"
        ) from exc


def rdkafka_config(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """librdkafka's names for the security settings in force (Settings.kafka_options gives
    kafka-python's)."""
    options = settings.kafka_options
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL_"):
        config["sasl.mechanism"] = options["sasl_mechanism"]
        config["sasl.username"] = options["sasl_plain_username"]
        config["sasl.password"] = options["sasl_plain_password"]
    for ours, theirs in (
        ("ssl_cafile", "ssl.ca.location"),
        ("ssl_certfile", "ssl.certificate.location"),
        ("ssl_keyfile", "ssl.key.location"),
    ):
        if ours in options:
            config[theirs] = options[ours]
    return config


class BatchProducer:
    """librdkafka's producer behind kafka-python's ``send``/``flush``, for the writers of
    many records a second (the ingesters and backfills).

    kafka-python sends from a Python thread that holds the GIL for each record's
    bookkeeping; librdkafka batches and sends in its own threads. Idempotent, acks from
    all in-sync replicas, and ``murmur2_random``: a key lands on the partition Java's and
    kafka-python's producers pick for it, so blocks keep their partitions across versions.
    A record the broker never took makes the next ``flush`` raise: nothing is dropped
    unnoticed, and callers move a checkpoint only after a flush.
    """

    def __init__(self, settings: Settings, bootstrap: str, *, client_id: str = "vigil") -> None:
        from confluent_kafka import Producer

        login = (bootstrap, settings.kafka_sasl_username, settings.kafka_sasl_password)
        if settings.kafka_security_protocol.startswith("SASL_") and login not in _LOGGED_IN:
            check_login(settings, bootstrap)
            _LOGGED_IN.add(login)
        self.bootstrap = bootstrap
        self._failed: list[str] = []
        self._producer = Producer(
            rdkafka_config(settings, bootstrap)
            | {
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "partitioner": "murmur2_random",
                "allow.auto.create.topics": False,  # vigil creates its topics, configured
                "linger.ms": 5,
                "message.max.bytes": MAX_MESSAGE_BYTES + 1024,  # the framing's few bytes
                "queue.buffering.max.kbytes": 1024 * 1024,  # 1 GB: a catch-up's blocks
                "error_cb": self._on_error,
                "logger": logging.getLogger("vigil.rdkafka"),
            }
        )

    def _on_error(self, error: Any) -> None:
        if error.fatal():
            self._failed.append(f"producer: {error.str()}")
        else:  # librdkafka retries these (a broker away, a timeout) on its own
            log.debug("kafka: %s", error.str())

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self._failed.append(f"{message.topic()}: {error.str()}")

    def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        """Queue one record; blocks while librdkafka's queue is full."""
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    partition=-1 if partition is None else partition,  # -1: the partitioner's
                    on_delivery=self._delivered,
                    headers=headers,
                )
                break
            except BufferError:
                self._producer.poll(0.05)  # serve deliveries until there is room
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every queued record is acknowledged; a BrokerError names the first
        that was not."""
        left = self._producer.flush(timeout)
        failed, self._failed = self._failed, []
        if failed:
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise BrokerError(f"Kafka at {self.bootstrap} refused a record: {failed[0]}{more}")
        if left:
            raise BrokerError(
                f"Kafka at {self.bootstrap}: {left} record(s) unacknowledged after {timeout:.0f} s"
            )

    def partitions_for(self, topic: str) -> set[int]:
        """The partition numbers of ``topic``."""
        found = self._producer.list_topics(topic, timeout=10).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise BrokerError(f"Kafka at {self.bootstrap}: no partitions for topic {topic}")
        return set(found.partitions)

    def close(self) -> None:
        """Flush what is queued (errors are the caller's last flush's to report)."""
        self._producer.flush(10)


def check_login(settings: Settings, bootstrap: str, timeout: float = 10.0) -> None:
    """A BrokerError naming the user when the brokers refuse the SASL login.

    kafka-python takes a refused login for a lost connection and retries until its timeout;
    librdkafka reports it as such within a second, so it is asked."""
    from confluent_kafka import KafkaError as RdKafkaError
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    refused: list[str] = []

    def on_error(error: Any) -> None:
        if error.code() == RdKafkaError._AUTHENTICATION:
            refused.append(error.str())

    config = rdkafka_config(settings, bootstrap) | {
        "error_cb": on_error,
        "log_level": 0,  # its own lines would repeat what the BrokerError says
    }
    client = AdminClient(config)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not refused:
        try:
            client.list_topics(timeout=0.5)
            return
        except KafkaException:
            client.poll(0.1)
    if refused:
        raise BrokerError(
            f"Kafka at {bootstrap} refused the login of VIGIL_KAFKA_SASL_USERNAME "
            f"{settings.kafka_sasl_username!r} ({settings.kafka_sasl_mechanism}): check "
            "VIGIL_KAFKA_SASL_PASSWORD and VIGIL_KAFKA_SASL_MECHANISM"
        )


def admin_client(settings: Settings, bootstrap: str, **options: Any) -> KafkaAdminClient:
    """An admin client of the cluster at ``bootstrap`` (closed by the caller)."""
    admin: KafkaAdminClient = _connect(KafkaAdminClient, settings, bootstrap, options)
    return admin


def consumer(settings: Settings, bootstrap: str, **options: Any) -> KafkaConsumer:
    """A consumer that can fetch whole blocks; topics are assigned or subscribed by the caller."""
    defaults = {
        "fetch_max_bytes": MAX_MESSAGE_BYTES,
        "max_partition_fetch_bytes": MAX_MESSAGE_BYTES,
        "enable_auto_commit": False,
    }
    found: KafkaConsumer = _connect(KafkaConsumer, settings, bootstrap, defaults | options)
    return found


def commit(reader: KafkaConsumer) -> bool:
    """Commit what ``reader`` read; False when its group is rebalancing (or it was dropped
    from it), which is no error: the records are read again by whichever member gets their
    partition, and every reader of vigil's handles a record seen twice once."""
    try:
        reader.commit()
    except (CommitFailedError, RebalanceInProgressError) as exc:
        log.info("offset commit skipped (%s); the records will be read again", type(exc).__name__)
        return False
    return True


def subscribe(reader: KafkaConsumer, topics: list[str]) -> None:
    """Join ``reader``'s group for ``topics``, their metadata learnt first: a member that
    leads the group's assignment without it (kafka-python's range assignor) assigns those
    partitions to nobody, and the group reads nothing until its next rebalance."""
    for topic in topics:
        reader.partitions_for_topic(topic)
    reader.subscribe(topics)


def producer(settings: Settings, bootstrap: str, **overrides: Any) -> KafkaProducer:
    """An idempotent producer that waits for all replicas and can carry whole blocks."""
    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "max_request_size": MAX_MESSAGE_BYTES,
        "linger_ms": 5,
        "client_id": "vigil",
    }
    options.update(overrides)
    made: KafkaProducer = _connect(KafkaProducer, settings, bootstrap, options)
    return made


def read_compacted(
    settings: Settings,
    bootstrap: str,
    topic: str,
    timeout: float = 30.0,
    *,
    read_committed: bool = False,
) -> dict[bytes, bytes]:
    """The latest value per key of ``topic`` (all partitions), read from the start to the end."""
    reader = consumer(
        settings,
        bootstrap,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
    )
    try:
        partitions = reader.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return {}
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        end = reader.end_offsets(tps)
        latest: dict[bytes, bytes] = {}
        deadline = time.monotonic() + timeout
        while any(reader.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise BrokerError(f"reading {topic} to its end took over {timeout:.0f} s")
            for records in reader.poll(timeout_ms=200).values():
                for record in records:
                    if record.key is None:
                        continue
                    if record.value is None:
                        latest.pop(record.key, None)  # tombstone
                    else:
                        latest[record.key] = record.value
        return latest
    finally:
        reader.close()


class Followed:
    """A compacted topic's latest value per key: read to its end when made, then kept up
    to date by ``follow`` (run it in a thread; it stops when ``stopping`` is set), which
    reads on from the offsets the first read started complete at."""

    def __init__(
        self, settings: Settings, bootstrap: str, topic: str, *, read_committed: bool = False
    ) -> None:
        self.settings, self.bootstrap, self.topic = settings, bootstrap, topic
        self.isolation = "read_committed" if read_committed else "read_uncommitted"
        # follow from where the read below starts to be complete, not from the beginning:
        # a replay would show old values (a revoked key valid again) for a moment
        probe = consumer(settings, bootstrap, isolation_level=self.isolation)
        try:
            parts = [TopicPartition(topic, p) for p in probe.partitions_for_topic(topic) or ()]
            self._from: dict[TopicPartition, int] = probe.end_offsets(parts) if parts else {}
        finally:
            probe.close()
        self.values = read_compacted(settings, bootstrap, topic, read_committed=read_committed)
        self.stopping = threading.Event()
        # called for each record followed (None: a tombstone), after ``values`` has it
        self.on_change: Callable[[bytes, bytes | None], None] | None = None

    def follow(self) -> None:
        reader = consumer(
            self.settings,
            self.bootstrap,
            client_id=f"vigil-follow-{self.topic}",
            isolation_level=self.isolation,
        )
        try:
            parts = [
                TopicPartition(self.topic, p) for p in reader.partitions_for_topic(self.topic) or ()
            ]
            reader.assign(parts)
            for tp in parts:
                reader.seek(tp, self._from.get(tp, 0))
            while not self.stopping.is_set():
                for records in reader.poll(timeout_ms=200).values():
                    values = dict(self.values)  # swapped whole: readers never see it change
                    for record in records:
                        if record.key is None:
                            continue
                        if record.value is None:
                            values.pop(record.key, None)
                        else:
                            values[record.key] = record.value
                    self.values = values
                    if self.on_change is not None:
                        for record in records:
                            if record.key is not None:
                                self.on_change(record.key, record.value)
        finally:
            reader.close()

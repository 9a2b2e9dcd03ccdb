"""The processes `vigil up` runs: serve (API + registry + history), worker, ingest."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from kafka.errors import KafkaError

from vigil import metrics
from vigil.config.loader import Project, load_project
from vigil.config.models import NetworkConfig
from vigil.config.secrets import missing_secrets
from vigil.errors import SettingsError, VigilError
from vigil.schemas.catalogue import CATALOGUE, REGISTRY_TOPIC
from vigil.schemas.codec import Codec
from vigil.schemas.registry import HttpRegistry, Registry
from vigil.settings import Settings
from vigil.stack.access import registry_client, route_secret, stack_key
from vigil.stack.instance import instance_id
from vigil.streams.secrets import with_stored_secrets

log = logging.getLogger(__name__)


def require_bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise SettingsError(
            "VIGIL_KAFKA_BOOTSTRAP is not set: this role joins a running stack; "
            "use `vigil up` to start one with the embedded broker"
        )
    return settings.kafka_bootstrap


def check_secrets(project: Project, settings: Settings) -> None:
    """Every secret a channel names must be set, or the worker would sign nothing."""
    missing = missing_secrets(project, settings)
    if missing:
        raise missing[0]


def preregistered_codec(settings: Settings, registry: Registry) -> Codec:
    """A codec whose schemas are registered now, so no agent waits on the registry later."""
    codec = Codec(registry)
    for topic in CATALOGUE:
        codec.schema_id(settings.topic(topic.suffix), topic.schema)
    return codec


def project_networks(settings: Settings) -> dict[str, NetworkConfig]:
    """The project's networks, for the relayers; none when the project does not load (the
    relayers then refuse to send, naming the network)."""
    try:
        return dict(load_project(settings.project_dir).config.networks)
    except VigilError as exc:
        log.warning("relayers: the project's networks are unknown: %s", exc)
        return {}


def serve(settings: Settings) -> None:
    """API + embedded schema registry + history sink: the one process that owns chDB."""
    import uvicorn

    from vigil.api.app import create_app
    from vigil.connectors.history.ddl import apply_ttl, migrate
    from vigil.connectors.history.query import connect
    from vigil.connectors.history.sink import HistorySink
    from vigil.streams.kafka import ensure_topics
    from vigil.streams.registry_log import kafka_backed_store

    bootstrap = require_bootstrap(settings)
    ensure_topics(settings, bootstrap)
    settings = with_stored_secrets(settings, bootstrap)
    store = None
    registry: Registry
    if settings.schema_registry_url:
        registry = HttpRegistry(settings.schema_registry_url)
    else:
        store = kafka_backed_store(settings, bootstrap, settings.topic(REGISTRY_TOPIC))
        registry = store
    codec = preregistered_codec(settings, registry)
    client = connect(settings.clickhouse, settings.clickhouse_database)
    applied = migrate(client)
    if applied:
        log.info("ClickHouse migrations applied: %s", applied)
    for table, days in apply_ttl(client, settings.history_ttl_days).items():
        log.info("history: %s %s", table, f"keeps {days} days" if days else "keeps every row")
    from vigil.stack.status import dead_letters

    metrics.DLQ_RECORDS.set_function(lambda: _dlq_size(settings, bootstrap, dead_letters))
    lock = threading.Lock()
    sink = HistorySink(settings, bootstrap, client, codec, lock)
    thread = threading.Thread(target=sink.run, name="history-sink", daemon=True)
    thread.start()
    from vigil.streams.forta.ingress import LocalModeIngress, kafka_publisher

    token = settings.forta_webhook_token
    forta = LocalModeIngress(
        settings.scan_nodes,
        token.get_secret_value() if token else None,
        kafka_publisher(settings, bootstrap, codec),
        clock_skew=settings.forta_clock_skew,
    )
    host, port = settings.api_bind.rsplit(":", 1)
    status = {
        "history": sink.inserted,
        "instance": instance_id(settings.data_dir, create=True),
        "dataDir": str(settings.data_dir.resolve()),
    }
    # users' SQL: a client of its own, with no lock shared with the sink, under limits the
    # query cannot lift (readonly): a long query runs out its time, history goes on
    queries = connect(settings.clickhouse, settings.clickhouse_database)
    from vigil.streams.api_keys import KeyRing

    keys = KeyRing(settings, bootstrap, stack_key(settings, create=True))
    threading.Thread(target=keys.follow, name="api-keys", daemon=True).start()
    from vigil.streams.task_webhooks import Webhooks

    webhooks = Webhooks(settings, bootstrap, codec)
    threading.Thread(target=webhooks.follow, name="task-webhooks", daemon=True).start()
    from vigil.streams.task_email import start_ingress

    mail = start_ingress(settings, bootstrap, codec) if settings.email_bind else None
    from vigil.streams.relayers import Relay

    relays: list[Relay] = []

    def relaying() -> None:  # off the start-up path: the project and two topics are read
        relay = Relay(settings, bootstrap, codec, project_networks(settings))
        relay.start()
        relays.append(relay)
        app.state.relay = relay

    app = create_app(
        keys,
        store=store,
        clickhouse=queries,
        status=status,
        forta=forta,
        limits=settings.sql_limits,
        config=(settings, bootstrap, codec),
        webhooks=webhooks,
        route_secret=route_secret(settings, create=True),
    )
    threading.Thread(target=relaying, name="relayers", daemon=True).start()
    # uvicorn restores the handlers it found and re-raises the signal it caught once it has
    # shut down: with Python handlers here, that re-raise returns, and the sink closes its
    # consumer and leaves its group (else the next sink waits out this member's session)
    for caught in (signal.SIGTERM, signal.SIGINT):
        signal.signal(caught, lambda signum, frame: None)
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=int(port), log_level="warning")).run()
    finally:
        sink.stopping.set()
        keys.stopping.set()
        webhooks.close()
        if mail is not None:
            mail[0].stop()
            mail[1].close()
        for relay in relays:
            relay.close()
        thread.join(15)
        log.info("serve stopped; the history sink left its group")


def worker(settings: Settings) -> None:
    """The Faust worker: matching and notification agents."""
    from faust.worker import Worker

    from vigil.streams.app import make_app
    from vigil.streams.kafka import ensure_topics
    from vigil.streams.live_config import LiveConfig
    from vigil.streams.worker import register_agents

    bootstrap = require_bootstrap(settings)
    metrics.serve(settings.worker_metrics_bind, "VIGIL_WORKER_METRICS_BIND")
    ensure_topics(settings, bootstrap)  # a worker may start before `vigil serve` made them
    settings = with_stored_secrets(settings, bootstrap)
    codec = preregistered_codec(settings, registry_client(settings))
    live = LiveConfig(settings, bootstrap, codec)
    live.load()  # the applied monitors and channels, before the first block is matched
    follower = threading.Thread(target=live.follow, name="config-follower", daemon=True)
    follower.start()
    app = make_app(settings, bootstrap)
    register_agents(app, settings, live, codec)
    try:
        Worker(app, loglevel=settings.log_level.lower(), quiet=True).execute_from_commandline()
    finally:
        live.stopping.set()
        follower.join(5)


def ingest(settings: Settings) -> None:
    """One ingester thread per network of the project; SIGTERM/SIGINT stop them cleanly."""
    from vigil.streams.evm.ingester import Ingester
    from vigil.streams.kafka import BatchProducer

    bootstrap = require_bootstrap(settings)
    metrics.serve(settings.ingest_metrics_bind, "VIGIL_INGEST_METRICS_BIND")
    settings = with_stored_secrets(settings, bootstrap)
    project = load_project(settings.project_dir)
    codec = preregistered_codec(settings, registry_client(settings))
    sink = BatchProducer(settings, bootstrap, client_id="vigil-ingester")
    from vigil.streams.forta.poller import FortaPoller

    ingesters: list[Ingester | FortaPoller] = [
        Ingester(settings, name, network, sink, codec, bootstrap)
        for name, network in project.config.networks.items()
    ]
    ingesters.extend(
        FortaPoller(settings, source, sink, codec, bootstrap) for source in project.config.forta_api
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        for ingester in ingesters:
            ingester.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failures: list[BaseException] = []

    def run(ingester: Ingester | FortaPoller) -> None:
        try:
            ingester.run()
        except BaseException as exc:  # reported by the main thread, which exits non-zero
            failures.append(exc)
            stop(0, None)

    threads = [
        threading.Thread(target=run, args=(i,), name=f"ingest-{_label(i)}") for i in ingesters
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.flush()
    sink.close()
    if failures:
        raise failures[0]


def runner(settings: Settings) -> None:
    """The task runner: runs requested tasks one at a time, and monitors' custom filters (a
    lane per monitor); SIGTERM/SIGINT stop it after the runs in progress."""
    parts: list[Any] = []  # what a stop stops, as it is made
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()
        for part in parts:
            part.stopping.set()

    # first: a stop during the imports and reads below ends the runner cleanly, not by the
    # signal's default action
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from vigil.streams.filters import FilterRunner
    from vigil.streams.hooks import AfterHooks
    from vigil.streams.kafka import ensure_topics
    from vigil.streams.relayer_owner import RelayerOwner
    from vigil.streams.relayers import Relay
    from vigil.streams.scheduler import Scheduler, Ticker
    from vigil.streams.tasks import TaskRunner

    bootstrap = require_bootstrap(settings)
    ensure_topics(settings, bootstrap)
    settings = with_stored_secrets(settings, bootstrap)
    codec = preregistered_codec(settings, registry_client(settings))
    tasks = TaskRunner(settings, bootstrap, codec)
    ticker, scheduler = Ticker(settings, bootstrap, codec), Scheduler(settings, bootstrap, codec)
    filters = FilterRunner(settings, bootstrap, codec, tasks.store)
    after = AfterHooks(settings, bootstrap, codec)
    parts.extend([tasks, ticker, scheduler, filters, after])

    def relaying() -> None:  # off the start-up path: the project and two topics are read
        relay = Relay(settings, bootstrap, codec, project_networks(settings))
        owner = RelayerOwner(settings, bootstrap, codec, relay)
        tasks.relay = relay  # context.relayer from now on
        parts.append(owner)
        if not stopped.is_set():
            owner.run()

    threads = [
        threading.Thread(target=relaying, name="relayer", daemon=True),
        threading.Thread(target=after.run, name="hooks-after", daemon=True),
        threading.Thread(target=ticker.run, name="ticker", daemon=True),
        threading.Thread(target=scheduler.run, name="scheduler", daemon=True),
        threading.Thread(target=filters.run, name="filters", daemon=True),
    ]

    if stopped.is_set():  # stopped while starting
        stop(0, None)
        return
    for thread in threads:
        thread.start()
    try:
        tasks.run()
    finally:
        stop(0, None)
        for thread in threads:
            thread.join(10)


def _dlq_size(settings: Settings, bootstrap: str, count: Any) -> float:
    try:
        return float(count(settings, bootstrap))
    except (VigilError, KafkaError, OSError):
        return float("nan")  # the broker is away: no figure rather than a wrong one


def _label(ingester: Any) -> str:
    """A thread name: the network of a chain ingester, the source of a Forta poller."""
    return str(getattr(ingester, "network", None) or getattr(ingester, "name", "?"))

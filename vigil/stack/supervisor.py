"""`vigil up`: starts the broker (unless one is given), then serve, worker, runner and ingest;
keeps them running; stops them in order.

A supervisor, not a launcher: a child (or the embedded broker) that dies is started again
after a backoff (1 s, 2 s, 4 s … 30 s), as systemd's ``Restart=on-failure`` would. Only a
crash loop, ``VIGIL_RESTART_LIMIT`` deaths of one child within ``VIGIL_RESTART_WINDOW``
seconds, stops the stack, with one line naming the child, how it ended and its log. Restarts
are logged and counted in ``<data dir>/logs/supervisor.json``. Ctrl-C stops ingest, runner, worker,
serve and the broker, in that order, each with a bounded wait.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import httpx

from vigil.config.loader import Project, load_project
from vigil.errors import BrokerError, RpcError, RpcUnavailable, VigilError
from vigil.processors.checks import check_project
from vigil.settings import Settings
from vigil.stack import process
from vigil.stack.broker import EmbeddedKafka, port_in_use
from vigil.stack.roles import check_secrets
from vigil.streams.evm.rpc import RpcPool
from vigil.streams.kafka import ensure_topics

log = logging.getLogger(__name__)
ROLES = ("serve", "worker", "runner", "ingest")
MAX_RESTART_DELAY = 30.0


class Stack:
    """The running processes of one installation, started in order and stopped in reverse."""

    def __init__(self, settings: Settings, say: Callable[[str], None] = print) -> None:
        self.settings, self.say = settings, say
        self.broker: EmbeddedKafka | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.bootstrap = settings.kafka_bootstrap or ""
        self.logs = (settings.data_dir / "logs").resolve()
        self.stopping = threading.Event()
        self.deaths: dict[str, list[float]] = {}  # role → when it died, within the window
        self.restarts: dict[str, int] = {}
        self.due: dict[str, float] = {}  # role → when to start it again

    def start(self) -> None:
        # bad config fails before anything runs
        project = check_project(load_project(self.settings.project_dir))
        if self.settings.secrets_key is None:  # else some are in the store: checked below
            check_secrets(project, self.settings)
        for warning in check_networks(project, self.settings, self.settings.rpc_start_wait):
            self.say(f"warning: {warning}")
        for name, bind in (
            ("VIGIL_API_BIND", self.settings.api_bind),
            ("VIGIL_WORKER_METRICS_BIND", self.settings.worker_metrics_bind),
            ("VIGIL_INGEST_METRICS_BIND", self.settings.ingest_metrics_bind),
        ):
            if port_in_use(int(bind.rsplit(":", 1)[1])):
                raise BrokerError(
                    f"the address {bind} of {name} is in use; stop what listens there or set {name}"
                )
        try:
            if not self.bootstrap:
                self.broker = EmbeddedKafka(self.settings)
                self.say("starting the embedded Kafka broker (KRaft)…")
                self.bootstrap = self.broker.start()
            self.say(f"Kafka at {self.bootstrap}")
            created = ensure_topics(self.settings, self.bootstrap)
            if created:
                self.say(f"created {len(created)} topics")
            if self.settings.secrets_key is not None:
                from vigil.streams.secrets import with_stored_secrets

                check_secrets(project, with_stored_secrets(self.settings, self.bootstrap))
            self.start_role("serve")
            self._wait_healthy()
            self.apply(project)
            self.start_role("worker")
            self.start_role("runner")
            self.start_role("ingest")
            self._write_status()
            self.say(f"vigil is up: API {self.settings.api_url}, logs in {self.logs}")
        except BaseException:
            self.stop()
            raise

    def apply(self, project: Project) -> None:
        """Publish the project's changes to the config topics (workers follow them)."""
        from vigil.stack.access import registry_client
        from vigil.stack.roles import preregistered_codec
        from vigil.streams.config_topics import apply_project

        codec = preregistered_codec(self.settings, registry_client(self.settings))
        planned = apply_project(self.settings, self.bootstrap, codec, project)
        changed = sum(1 for p in planned if p.effect != "unchanged")
        self.say(f"applied {project.root}: {changed} change(s)")

    def start_role(self, role: str) -> None:
        """Start (or restart) one role as a child process."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        env = {**inherited, **self.settings.child_env(), "VIGIL_KAFKA_BOOTSTRAP": self.bootstrap}
        self.children[role] = process.spawn(
            self._argv(role), env=env, log_file=self.logs / f"{role}.log"
        )

    def _argv(self, role: str) -> list[str]:
        return [sys.executable, "-m", "vigil", role]

    def _wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            serve = self.children["serve"]
            if serve.poll() is not None:
                raise VigilError(
                    f"`vigil serve` exited with {serve.returncode} during start; "
                    f"see {self.logs / 'serve.log'}"
                )
            try:
                if httpx.get(f"{self.settings.api_url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise VigilError(
            f"the API did not answer within {timeout:.0f} s; see {self.logs / 'serve.log'}"
        )

    def check(self) -> bool:
        """Raise if a child has died (for callers that wait on something else); else False."""
        for role, child in self.children.items():
            if child.poll() is not None:
                raise VigilError(
                    f"`vigil {role}` exited with {child.returncode}; "
                    f"see {self.logs / (role + '.log')}"
                )
        return False

    def watch(self) -> int:
        """Keep the children running until a signal (0) or a crash loop (1)."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stopping.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not self.stopping.wait(0.5):
            if not self.tend():
                return 1
        return 0

    def tend(self) -> bool:
        """One round of supervision: note deaths, restart what is due; False on a crash loop."""
        now = time.monotonic()
        ended: list[tuple[str, int | None, Path]] = []
        if self.broker is not None and self.broker.returncode is not None:
            ended.append(("broker", self.broker.returncode, self.broker.log_file))
        if "broker" not in self.due:  # else the broker's restart restarts the children too
            ended += [
                (role, child.returncode, self.logs / f"{role}.log")
                for role, child in self.children.items()
                if role not in self.due and child.poll() is not None
            ]
        for role, code, log_file in ended:
            if not self._died(role, code, log_file, now):
                return False
        for role, when in list(self.due.items()):
            if now >= when and not self.stopping.is_set():
                del self.due[role]
                self._restart(role)
        return True

    def _died(self, role: str, code: int | None, log_file: Path, now: float) -> bool:
        window = self.settings.restart_window
        deaths = [t for t in self.deaths.get(role, []) if now - t < window] + [now]
        self.deaths[role] = deaths
        how = process.describe_exit(code)
        if len(deaths) >= self.settings.restart_limit:
            self.say(
                f"`vigil {role}` died {len(deaths)} times within {window:.0f} s "
                f"(last: {how}); stopping. See {log_file}"
            )
            return False
        delay = min(MAX_RESTART_DELAY, 2.0 ** (len(deaths) - 1))
        self.say(f"`vigil {role}` died ({how}); restarting it in {delay:.0f} s. See {log_file}")
        self.due[role] = now + delay
        if role == "broker":
            assert self.broker is not None
            self.broker.forget()
        return True

    def _restart(self, role: str) -> None:
        if role == "broker":
            assert self.broker is not None
            self.bootstrap = self.broker.start()
            # the children follow: Faust's consumer does not rejoin its group once its
            # coordinator died (seen here: the worker stalled for good after a broker restart)
            self._stop_children()
            self.start_role("serve")
            self._wait_healthy()
            self.start_role("worker")
            self.start_role("runner")
            self.start_role("ingest")
        else:
            self.start_role(role)
        self.restarts[role] = self.restarts.get(role, 0) + 1  # counted once it is back
        self.say(f"restarted `vigil {role}` (restart {self.restarts[role]})")
        self._write_status()

    def _write_status(self) -> None:
        """Restart counts for operators (and `vigil status`)."""
        status: dict[str, dict[str, int | None]] = {
            role: {"restarts": self.restarts.get(role, 0), "pid": child.pid}
            for role, child in self.children.items()
        }
        if self.broker is not None:
            status["broker"] = {"restarts": self.restarts.get("broker", 0), "pid": self.broker.pid}
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.logs / "supervisor.json").write_text(json.dumps(status, indent=1))

    def _stop_children(self) -> None:
        """Stop ingest, worker and serve in that order, each with a bounded wait."""
        for role in [r for r in reversed(ROLES) if r in self.children]:
            code = process.stop(self.children.pop(role), f"vigil {role}")
            self.say(f"stopped `vigil {role}` ({process.describe_exit(code)})")
        for role in list(self.children):  # none are expected
            process.stop(self.children.pop(role), f"vigil {role}")

    def stop(self) -> None:
        """Stop the children in order, then the broker."""
        self.due.clear()
        self._stop_children()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
            self.say("stopped the Kafka broker")


def check_networks(project: Project, settings: Settings, wait: float = 30.0) -> list[str]:
    """Each network's node answers with the configured chain id; returns warnings.

    Transient errors (transport, timeouts, 429, 5xx) are retried, as the ingester's pool
    does, for up to ``wait`` seconds; a network still unreachable then is a warning (its
    ingester keeps trying while the others run). A wrong chain id, or a JSON-RPC error
    answer, is an error: nothing starts.
    """

    def check(name: str) -> str | None:
        network = project.config.networks[name]
        pool = RpcPool.for_network(name, network, settings, timeout=5.0, cooldown=0.0)
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    chain_id = int(pool.call("eth_chainId"), 16)
                    break
                except RpcUnavailable as exc:
                    if time.monotonic() >= deadline:
                        return (
                            f"network {name!r} is unreachable ({exc}); its ingester keeps "
                            f"trying while the others run. Is the node running and the URL in "
                            f"{project.root / 'vigil.yaml'} right?"
                        )
                    time.sleep(1.0)
                except RpcError as exc:
                    raise RpcError(f"network {name!r}: {exc}") from None
        finally:
            pool.close()
        if chain_id != network.chain_id:
            raise RpcError(
                f"network {name!r}: {pool.shown} is on chain {chain_id}, "
                f"but vigil.yaml says chain_id {network.chain_id}"
            )
        return None

    names = list(project.config.networks)
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(names))) as checks:
        return [w for w in checks.map(check, names) if w]


def up(settings: Settings, say: Callable[[str], None] = print) -> int:
    stack = Stack(settings, say)
    stack.start()
    try:
        code = stack.watch()
    finally:
        say("stopping…")
        stack.stop()
    say("stopped")
    return code

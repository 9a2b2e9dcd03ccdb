"""`vigil up`: starts the broker (unless one is given), then serve, worker and ingest; stops all."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

import httpx

from vigil.config.loader import Project, load_project
from vigil.errors import BrokerError, RpcError, VigilError
from vigil.runtime import process
from vigil.runtime.broker import EmbeddedKafka, port_in_use
from vigil.runtime.roles import check_secrets
from vigil.settings import Settings
from vigil.streams.evm.rpc import RpcClient
from vigil.streams.kafka import ensure_topics

log = logging.getLogger(__name__)
ROLES = ("serve", "worker", "ingest")


class Stack:
    """The running processes of one installation, started in order and stopped in reverse."""

    def __init__(self, settings: Settings, say: Callable[[str], None] = print) -> None:
        self.settings, self.say = settings, say
        self.broker: EmbeddedKafka | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.bootstrap = settings.kafka_bootstrap or ""
        self.logs = (settings.data_dir / "logs").resolve()
        self.stopping = threading.Event()

    def start(self) -> None:
        project = load_project(self.settings.project_dir)  # bad config fails before anything runs
        check_secrets(project, self.settings)
        check_networks(project)
        port = self.settings.api_bind.rsplit(":", 1)[1]
        if port_in_use(int(port)):
            raise BrokerError(
                f"the API address {self.settings.api_bind} is in use; stop what "
                "listens there or set VIGIL_API_BIND"
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
            self.start_role("serve")
            self._wait_healthy()
            self.apply(project)
            self.start_role("worker")
            self.start_role("ingest")
            self.say(f"vigil is up: API {self.settings.api_url}, logs in {self.logs}")
        except BaseException:
            self.stop()
            raise

    def apply(self, project: Project) -> None:
        """Publish the project's changes to the config topics (workers follow them)."""
        from vigil.config.state import apply_project
        from vigil.runtime.roles import preregistered_codec
        from vigil.schemas.registry import HttpRegistry

        codec = preregistered_codec(self.settings, HttpRegistry(self.settings.registry_url))
        planned = apply_project(self.settings, self.bootstrap, codec, project)
        changed = sum(1 for p in planned if p.effect != "unchanged")
        self.say(f"applied {project.root}: {changed} change(s)")

    def start_role(self, role: str) -> None:
        """Start (or restart) one role as a child process."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        env = {**inherited, **self.settings.child_env(), "VIGIL_KAFKA_BOOTSTRAP": self.bootstrap}
        self.children[role] = process.spawn(
            [sys.executable, "-m", "vigil", role], env=env, log_file=self.logs / f"{role}.log"
        )

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
        """Block until a signal or a child's death; returns the exit code for `vigil up`."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stopping.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not self.stopping.wait(0.5):
            for role, child in self.children.items():
                if child.poll() is not None:
                    self.say(
                        f"`vigil {role}` exited with {child.returncode}; stopping. "
                        f"See {self.logs / (role + '.log')}"
                    )
                    return 1
        return 0

    def stop(self) -> None:
        for role in reversed(list(self.children)):
            process.stop(self.children.pop(role), f"vigil {role}")
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def check_networks(project: Project) -> None:
    """Each network's first RPC endpoint answers with the configured chain id."""
    for name, network in project.config.networks.items():
        rpc = RpcClient(network.rpc_urls[0].url, timeout=5.0)
        try:
            chain_id = int(rpc.call("eth_chainId"), 16)
        except RpcError as exc:
            raise RpcError(
                f"network {name!r}: {exc}; is the node running and the URL in "
                f"{project.root / 'vigil.yaml'} right?"
            ) from None
        finally:
            rpc.close()
        if chain_id != network.chain_id:
            raise RpcError(
                f"network {name!r}: {network.rpc_urls[0].url} is on chain {chain_id}, "
                f"but vigil.yaml says chain_id {network.chain_id}"
            )


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

"""`vigil up` as a supervisor: it restarts what dies, stops on a crash loop, starts through a
flaky or dead node, and stops its children in order on the terminal's Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from tests.e2e.stack import LARGE, SECRET, Running, write_project
from tests.rpc_server import JsonRpcServer
from vigil.config.loader import load_project
from vigil.demo.chain import ACCOUNTS, Anvil, Token
from vigil.errors import RpcError
from vigil.settings import load_settings
from vigil.stack import process
from vigil.stack import supervisor as supervisor_module
from vigil.stack.broker import free_port
from vigil.stack.supervisor import Stack, check_networks, up
from vigil.testing import WebhookReceiver, wait_for

pytestmark = pytest.mark.e2e
DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port


class Supervising:
    """`vigil up`'s watch loop in a thread (signal handlers belong to the main thread)."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.alive = stack, True
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.done.wait(0.3):
            if not self.stack.tend():
                self.alive = False
                return

    def __enter__(self) -> "Supervising":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(10)


def with_dead_network(root: Path) -> None:
    """A second network whose node is down: it must not keep the first from running."""
    config = root / "vigil.yaml"
    config.write_text(
        config.read_text() + f"  down:\n    chain_id: 5\n    rpc_urls: ['{DEAD}']\n"
        "    poll_interval: 0.5\n"
    )


@pytest.fixture
def embedded(tmp_path: Path, anvil: Anvil) -> Iterator[tuple[Running, list[str]]]:
    """A stack with its own embedded broker (so the broker can be killed too)."""
    token = Token(anvil.url)
    receiver = WebhookReceiver().start()
    root = tmp_path / "project"
    write_project(root, anvil, token, receiver, int(anvil.rpc("eth_blockNumber"), 16) + 1)
    with_dead_network(root)
    settings = load_settings(
        data_dir=tmp_path / "data",
        project_dir=root,
        kafka_bootstrap="",
        api_bind=f"127.0.0.1:{free_port()}",
        secrets={"hook": SECRET},
        rpc_start_wait=1.0,
    )
    said: list[str] = []
    stack = Stack(settings, say=lambda text: said.append(f"{time.strftime('%H:%M:%S')} {text}"))
    stack.start()
    try:
        yield Running(stack, token, receiver, anvil), said
    finally:
        stack.stop()
        receiver.stop()


def delivered(running: Running) -> list[str]:
    return [e["hash"] for p in running.receiver.received for e in p.json()["events"]]


def test_every_child_is_restarted_and_nothing_is_lost(
    embedded: tuple[Running, list[str]],
) -> None:
    """kill -9 of worker, ingest and serve while transfers keep arriving; a network whose
    node is down at start does not hold the others back."""
    check_kills(*embedded, ("worker", "ingest", "serve"))


def test_the_broker_is_restarted_and_nothing_is_lost(
    embedded: tuple[Running, list[str]],
) -> None:
    """kill -9 of the embedded broker: it and then the children, in order, are restarted."""
    check_kills(*embedded, ("broker",))


def check_kills(running: Running, said: list[str], roles: tuple[str, ...]) -> None:
    """Kill each of ``roles`` in turn while transfers arrive; all delivered once, in history."""
    stack, sent = running.stack, []
    assert any("network 'down' is unreachable" in line for line in said)
    stop_sending = threading.Event()

    def send() -> None:
        while not stop_sending.wait(0.4):
            sent.append(running.token.transfer(ACCOUNTS[1], LARGE)["transactionHash"].to_0x_hex())

    def api_answers() -> bool:
        try:
            return running.sql("SELECT 1") == [[1]]
        except Exception:
            return False

    def works_again(role: str) -> None:
        """Transfers sent after the restart are delivered, and the API answers again."""
        wait_for(lambda: not supervising.alive or stack.restarts.get(role) == 1, 120, "restart")
        assert supervising.alive, said
        after = len(sent) + 2
        wait_for(lambda: len(sent) >= after, 30, "two more transfers")
        wait_for(lambda: set(sent[:after]) <= set(delivered(running)), 120, f"after {role}")
        wait_for(api_answers, 60, f"the API after {role}")

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        with Supervising(stack) as supervising:
            # past the worker's first commits: a worker killed in its first seconds can still
            # lose or repeat what it was doing (see the closing note of issue 10)
            # past the worker's first seconds: a worker killed right after its start may
            # repeat the one POST it was sending (see the closing note of issue 10)
            wait_for(lambda: len(delivered(running)) >= 5, 60, "five deliveries")
            time.sleep(3)
            for role in roles:
                victim = stack.broker._process if role == "broker" else stack.children[role]  # type: ignore[union-attr]
                assert victim is not None
                victim.kill()
                works_again(role)
            stop_sending.set()
            sender.join(10)
            wait_for(
                lambda: set(delivered(running)) >= set(sent),
                120,
                f"every transfer of {len(sent)}: "
                f"missing {sorted(set(sent) - set(delivered(running)))[:5]}",
            )
            time.sleep(3)
            posted = delivered(running)
            twice = sorted({h for h in posted if posted.count(h) > 1})
            extra = sorted(set(posted) - set(sent))
            assert not twice and not extra, (twice, extra, said)  # once each
            assert supervising.alive, said

            def history_complete() -> bool:
                try:
                    matches = running.sql("SELECT count() FROM matches FINAL")[0][0]
                    no_gap = running.sql(
                        "SELECT count() = max(number) - min(number) + 1 FROM blocks FINAL "
                        "WHERE retracted = 0 AND network = 'anvil'"
                    )
                except Exception:  # the API restarts with the broker
                    return False
                return bool(matches == len(sent) and no_gap == [[1]])

            history = wait_for(history_complete, 120, "history: every match, no gap in blocks")
            assert history
    except BaseException:
        print("\n".join(said))
        raise
    finally:
        stop_sending.set()
    status = json.loads((stack.logs / "supervisor.json").read_text())
    assert {role: status[role]["restarts"] for role in roles} == dict.fromkeys(roles, 1)


class Crashing(Stack):
    def _argv(self, role: str) -> list[str]:
        if role == "worker":
            return [sys.executable, "-c", "import sys; print('no luck'); sys.exit(3)"]
        return super()._argv(role)


def test_a_child_that_keeps_crashing_stops_the_stack_with_one_line(
    running: Running, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    running.stack.stop()
    settings = running.stack.settings.model_copy(update={"restart_window": 60.0})
    monkeypatch.setattr(supervisor_module, "Stack", Crashing)
    started = time.monotonic()
    assert up(settings, say=print) == 1  # `vigil up` exits 1
    lines = capsys.readouterr().out.splitlines()
    [loop] = [line for line in lines if "times within" in line]
    log_file = settings.data_dir.resolve() / "logs" / "worker.log"
    assert loop == (
        f"`vigil worker` died 5 times within 60 s (last: exit status 3); stopping. See {log_file}"
    )
    assert len([line for line in lines if "restarting it in" in line]) == 4
    assert time.monotonic() - started < 90  # 1 + 2 + 4 + 8 s of backoff, then stop
    assert "no luck" in log_file.read_text()


def group_state(bootstrap: str, group: str) -> str:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_groups([group])[group]
        return str(described.get("group_state") or described.get("state"))
    finally:
        admin.close()


def test_a_clean_stop_of_serve_leaves_the_history_group_at_once(running: Running) -> None:
    """uvicorn re-raises the signal it caught; the sink must still close and leave."""
    stack = running.stack
    running.mine_transfers(LARGE)
    wait_for(lambda: running.sql("SELECT count() FROM matches FINAL") == [[1]] or None, 60, "row")
    group = stack.settings.group("history")
    assert group_state(stack.bootstrap, group) == "Stable"
    assert process.stop(stack.children.pop("serve"), "serve") == 0
    assert group_state(stack.bootstrap, group) == "Empty"  # left, no session to wait out
    assert "the history sink left its group" in (stack.logs / "serve.log").read_text()
    stack.start_role("serve")
    stack._wait_healthy()
    started = time.monotonic()
    running.mine_transfers(LARGE + 1)
    wait_for(lambda: running.sql("SELECT count() FROM matches FINAL") == [[2]] or None, 60, "row 2")
    print(f"history resumed {time.monotonic() - started:.1f} s after the restart")


def test_start_goes_through_a_throttling_node_and_past_a_dead_one(
    tmp_path: Path, anvil: Anvil
) -> None:
    flaky = JsonRpcServer(upstream=anvil.url, faults=[429, 429])
    flaky.start()
    try:
        root = tmp_path / "project"
        root.mkdir()
        (root / "vigil.yaml").write_text(
            "networks:\n"
            f"  anvil:\n    chain_id: 31337\n    rpc_urls: ['{flaky.url}']\n"
            f"  down:\n    chain_id: 5\n    rpc_urls: ['{DEAD}']\n"
        )
        project = load_project(root)
        [warning] = check_networks(project, load_settings(data_dir=tmp_path), wait=1.0)
        assert warning.startswith("network 'down' is unreachable")
        assert flaky.faults == []  # 429 twice, then through: only the dead network warns
        (root / "vigil.yaml").write_text(
            f"networks:\n  anvil:\n    chain_id: 1\n    rpc_urls: ['{anvil.url}']\n"
        )
        with pytest.raises(RpcError, match=r"is on chain 31337, but vigil\.yaml says chain_id 1"):
            check_networks(load_project(root), load_settings(data_dir=tmp_path), wait=1.0)
    finally:
        flaky.stop()


def test_ctrl_c_stops_the_children_in_order(tmp_path: Path, anvil: Anvil) -> None:
    """SIGINT to the process group of `vigil up`, as a terminal sends it."""
    token = Token(anvil.url)
    receiver = WebhookReceiver().start()
    root = tmp_path / "project"
    write_project(root, anvil, token, receiver, int(anvil.rpc("eth_blockNumber"), 16) + 1)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")},
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_PROJECT_DIR": str(root),
        "VIGIL_API_BIND": f"127.0.0.1:{free_port()}",
        "VIGIL_SECRETS": f'{{"hook": "{SECRET}"}}',
        "COLUMNS": "200",
    }
    up_process = subprocess.Popen(
        [sys.executable, "-m", "vigil", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a shell job has
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(up_process.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        wait_for(lambda: any("vigil is up" in line for line in lines), 120, "vigil up")
        token.transfer(ACCOUNTS[1], LARGE)
        wait_for(lambda: receiver.received, 60, "a delivery")
        os.killpg(up_process.pid, signal.SIGINT)
        assert up_process.wait(120) == 0
    finally:
        if up_process.poll() is None:
            up_process.kill()
        receiver.stop()
    reader.join(5)
    stopped = [line.split("vigil ", 1)[-1].strip() for line in lines if "stopped" in line]
    order = [s for s in stopped if s.startswith(("stopped `", "stopped the Kafka"))]
    assert [o.split(" (")[0] for o in order] == [
        "stopped `vigil ingest`",
        "stopped `vigil runner`",
        "stopped `vigil worker`",
        "stopped `vigil serve`",
        "stopped the Kafka broker",
    ], lines
    assert all("(exit status 0)" in o for o in order[:4]), order
    serve_log = (tmp_path / "data" / "logs" / "serve.log").read_text()
    assert "ConnectionError" not in serve_log and "ECONNREFUSED" not in serve_log, serve_log[-2000:]
    assert "the history sink left its group" in serve_log

"""Custom filters on a real broker, through the filter runner's sandboxed calls: 25 matches
per call, the kept hashes and their metadata sent on, every failure a failed run and no
match, and a slow filter holding up only its own monitor."""

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from tests.helpers import FIXTURES
from tests.unit.test_config import CHANNEL, NETWORK, USDT
from vigil.config.loader import load_project
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings, load_settings
from vigil.streams.config_topics import apply_project
from vigil.streams.filters import FilterRunner
from vigil.streams.kafka import ensure_topics, producer
from vigil.streams.task_kv import TopicStore

pytestmark = pytest.mark.integration

KEEP_EVEN = """def handler(event):
    events = event["request"]["body"]["events"]
    print("asked about", len(events))
    return {"matches": [
        {"hash": e["hash"], "metadata": {"rank": int(e["hash"], 16) % 100}}
        for e in events if int(e["hash"], 16) % 2 == 0
    ]}
"""
FILTERS = {
    "even": KEEP_EVEN,
    "raises": "def handler(event):\n    raise ValueError('no data source')\n",
    "garbage": "def handler(event):\n    return {'matches': 'all of them'}\n",
    "sleeps": "import time\ndef handler(event):\n    time.sleep(60)\n",
    "slow": "import time\ndef handler(event):\n    time.sleep(3)\n    return {'matches': "
    "[{'hash': e['hash']} for e in event['request']['body']['events']]}\n",
    "fast": "def handler(event):\n    return {'matches': "
    "[{'hash': e['hash']} for e in event['request']['body']['events']]}\n",
}


def write_project(root: Path) -> None:
    (root / "monitors").mkdir(parents=True)
    (root / "channels").mkdir()
    (root / "tasks").mkdir()
    (root / "vigil.yaml").write_text(NETWORK)
    (root / "channels" / "ops.yaml").write_text(CHANNEL)
    for name, code in FILTERS.items():
        (root / "filters").mkdir(exist_ok=True)
        (root / "filters" / f"{name}.py").write_text(code)
        # "sleeps" is a project task (its timeout is 2 s), the others are files
        target = "sleeps" if name == "sleeps" else f"../filters/{name}.py"
        (root / "monitors" / f"{name}.yaml").write_text(
            f"name: {name}\nnetwork: mainnet\naddresses: ['{USDT}']\nchannels: [ops]\n"
            f"filter: {target}\n"
        )
    (root / "tasks" / "sleeps.yaml").write_text(
        "name: sleeps\ncode: ../filters/sleeps.py\ntimeout: 2\nfailure_channels: [ops]\n"
    )


def batch(monitor: str, count: int, block: int) -> dict[str, Any]:
    match = json.loads((FIXTURES / "avro" / "Match.json").read_text())
    matches = []
    for n in range(count):
        tx_hash = f"0x{block:032x}{n:032x}"
        matches.append(
            {
                **match,
                "id": f"{monitor}:mainnet:0xb{block}:{tx_hash}:-",
                "hash": tx_hash,
                "monitor": {**match["monitor"], "id": monitor, "name": monitor},
            }
        )
    return {
        "id": f"{monitor}:mainnet:0xb{block}",
        "monitorId": monitor,
        "network": "mainnet",
        "blockNumber": block,
        "blockHash": f"0xb{block}",
        "matches": matches,
        "retracted": False,
        "channel": None,
        "redelivery": False,
    }


def test_filters_keep_what_they_return_and_fail_to_no_match(
    settings: Settings, kafka: str, tmp_path: Path
) -> None:
    write_project(tmp_path / "project")
    settings = load_settings(**{**settings.model_dump(), "project_dir": tmp_path / "project"})
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    apply_project(settings, kafka, codec, load_project(settings.project_dir))
    store = TopicStore(settings, kafka, max_items=10)
    runner = FilterRunner(settings, kafka, codec, store)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    out = KafkaConsumer(
        settings.topic("monitor.match-batches"),
        settings.topic("monitor.matches"),
        settings.topic("tasks.runs"),
        bootstrap_servers=kafka,
        auto_offset_reset="earliest",
    )
    seen: dict[str, list[Any]] = {"batches": [], "matches": [], "runs": []}
    order: list[str] = []

    def read_until(done: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            for tp, records in out.poll(timeout_ms=200).items():
                for record in records:
                    if tp.topic.endswith("match-batches"):
                        decoded = codec.decode(record.value, "MatchBatch")
                        seen["batches"].append(decoded)
                        order.append(decoded["monitorId"])
                    elif tp.topic.endswith("monitor.matches"):
                        seen["matches"].append(codec.decode(record.value, "Match"))
                    else:
                        seen["runs"].append(codec.decode(record.value, "TaskRun"))
        assert done(), seen

    sink = producer(settings, kafka)
    topic = settings.topic("monitor.filter-requests")

    def send(record: dict[str, Any]) -> None:
        value = codec.encode(topic, "MatchBatch", record)
        sink.send(topic, key=record["monitorId"].encode(), value=value).get(30)

    try:
        # a slow filter holds up only its own monitor: the fast one's batch gets out first
        send(batch("slow", 1, 1))
        send(batch("fast", 1, 2))
        read_until(lambda: len(seen["batches"]) == 2)
        assert order == ["fast", "slow"]

        send(batch("even", 60, 3))
        runs = lambda: [r for r in seen["runs"] if r["runId"].startswith("filter:even:")]  # noqa: E731
        history = lambda: [m for m in seen["matches"] if m["monitor"]["id"] == "even"]  # noqa: E731
        read_until(lambda: len(runs()) == 3 and len(seen["batches"]) == 3 and len(history()) == 30)
        assert sorted(r["runId"].rsplit(":", 1)[1] for r in runs()) == ["0", "1", "2"]
        assert sorted(r["logs"] for r in runs()) == [
            "asked about 10\n",
            "asked about 25\n",
            "asked about 25\n",
        ]
        kept = seen["batches"][-1]
        assert len(kept["matches"]) == 30 and kept["id"] == "even:mainnet:0xb3"
        for match in kept["matches"]:
            assert int(match["hash"], 16) % 2 == 0
            assert json.loads(match["metadata"]) == {"rank": int(match["hash"], 16) % 100}
        assert sorted(m["hash"] for m in history()) == sorted(m["hash"] for m in kept["matches"])

        for name in ("raises", "garbage", "sleeps"):
            send(batch(name, 3, 4))
        failed = lambda: {  # noqa: E731
            r["taskId"]: r
            for r in seen["runs"]
            if r["trigger"] == "filter" and r["status"] != "success"
        }
        read_until(lambda: len(failed()) == 3, 90)
        assert failed()["filter:../filters/raises.py"]["errorType"] == "ValueError"
        assert failed()["filter:../filters/garbage.py"]["errorType"] == "FilterAnswerError"
        assert failed()["sleeps"]["status"] == "timeout"
        time.sleep(1)
        read_until(lambda: True)
        assert len(seen["batches"]) == 3  # nothing got through from the failing filters
    finally:
        runner.stopping.set()
        thread.join(30)
        sink.close()
        out.close()
        store.close()


def test_monitors_test_runs_the_filter_locally(tmp_path: Path) -> None:
    from tests.helpers import MAINNET, vigil_cli
    from vigil.settings import REPO_ROOT

    source = (REPO_ROOT / "examples" / "mainnet" / "usdt.yaml").read_text()
    abi = (REPO_ROOT / "examples" / "abis").resolve()
    monitor = tmp_path / "usdt.yaml"
    monitor.write_text(source.replace("../abis/", f"{abi}/") + "filter: ./last.py\n")
    (tmp_path / "last.py").write_text(
        "def handler(event):\n"
        "    last = event['request']['body']['events'][-1]\n"
        "    return {'matches': [{'hash': last['hash'], 'metadata': {'kept': 'last'}}]}\n"
    )
    args = (
        "monitors", "test", str(monitor), "--format", "json",
        "--blocks", str(MAINNET / "18000000.block.json"),
        "--receipts", str(MAINNET / "18000000.receipts.json"),
    )  # fmt: skip
    unfiltered = tmp_path / "plain.yaml"
    unfiltered.write_text(source.replace("../abis/", f"{abi}/"))
    plain = vigil_cli(*args[:2], str(unfiltered), *args[3:])
    both = [e["hash"] for e in json.loads(plain.stdout)]
    assert len(both) == 2, plain.stderr
    done = vigil_cli(*args, env={"VIGIL_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 0, done.stderr
    [event] = json.loads(done.stdout)  # of the two matches, the filter kept the last
    assert event["hash"] == both[-1] and event["metadata"] == {"kept": "last"}
    (tmp_path / "last.py").write_text("def handler(event):\n    raise KeyError('price')\n")
    failed = vigil_cli(*args, env={"VIGIL_DATA_DIR": str(tmp_path / "data")})
    assert failed.returncode == 0 and json.loads(failed.stdout) == []
    assert "filter: KeyError: 'price'" in failed.stderr

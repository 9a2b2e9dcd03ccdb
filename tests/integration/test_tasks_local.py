"""`vigil tasks run PATH --local`: real task processes in the sandbox, as a user runs them."""

import json
from pathlib import Path

import pytest

from tests.helpers import vigil_cli
from vigil.connectors.tasks import landlock

pytestmark = pytest.mark.integration
SECRET = "s3cret-value-of-the-api-key"
ENV = {"VIGIL_SECRETS": json.dumps({"api-key": SECRET})}


def task(tmp_path: Path, source: str, name: str = "task.py") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def run_json(path: Path, *args: str) -> tuple[int, dict[str, object]]:
    done = vigil_cli("tasks", "run", str(path), "--local", "--format", "json", *args, env=ENV)
    assert done.stderr == "", done.stderr
    return done.returncode, json.loads(done.stdout)  # stdout is the run record alone


def test_a_task_gets_its_event_a_store_and_channels_and_no_secrets_leak(tmp_path: Path) -> None:
    path = task(
        tmp_path,
        "import os\n"
        "async def handler(event, context):\n"
        "    print('body', event['request']['body'])\n"
        "    context.kv.put('count', str(int(context.kv.get('count') or 0) + 1))\n"
        "    context.kv.put('gone', 'x')\n"
        "    getattr(context.kv, 'del')('gone')\n"
        "    context.notify.send('ops', 'subject', 'message')\n"
        "    print('the key is', event['secrets']['api-key'])\n"
        "    return {'count': context.kv.get('count'), 'gone': context.kv.get('gone'),\n"
        "            'env': sorted(os.environ), 'cwd': os.getcwd(), 'trigger': event['trigger']}\n",
    )
    code, record = run_json(path, "--payload", '{"amount": 7}')
    assert code == 0 and record["status"] == "success"
    result = record["result"]
    assert isinstance(result, dict)
    assert result["count"] == "1" and result["gone"] is None and result["trigger"] == "manual"
    # a scrubbed environment: nothing of vigil's settings or secrets reaches the run
    assert result["env"] == sorted(
        ["HOME", "LANG", "PATH", "PYTHONUNBUFFERED", "TMPDIR", "VIGIL_TASK_API", "VIGIL_TASK_TOKEN"]
    )
    assert "vigil-run-" in str(result["cwd"])
    assert record["logs"] == "body {'amount': 7}\nthe key is [secret api-key]\n"
    assert SECRET not in json.dumps(record)


def test_a_kv_value_past_300_kb_raises_inside_the_task(tmp_path: Path) -> None:
    path = task(
        tmp_path, "def handler(event, context):\n    context.kv.put('k', 'x' * 300_000 * 2)\n"
    )
    code, record = run_json(path)
    assert code == 1 and record["status"] == "error"
    assert record["errorType"] == "TaskError"
    assert record["errorMessage"] == "value: at most 307200 bytes (300 KB), got 600000"


def test_a_failure_a_timeout_and_1_gb_are_recorded(tmp_path: Path) -> None:
    failing = task(tmp_path, "def handler(event):\n    raise ValueError('balance too low')\n")
    code, record = run_json(failing)
    assert code == 1 and record["status"] == "error"
    assert (record["errorType"], record["errorMessage"]) == ("ValueError", "balance too low")
    assert 'main.py", line 2, in handler' in str(record["logs"])
    assert "shim.py" not in str(record["logs"])

    sleeper = task(tmp_path, "import time\ndef handler(event):\n    time.sleep(60)\n", "s.py")
    code, record = run_json(sleeper, "--timeout", "1")
    assert code == 1 and record["status"] == "timeout"
    assert record["errorMessage"] == "ran past its 1 s limit"
    assert 1000 <= int(str(record["durationMs"])) < 10_000

    hungry = task(tmp_path, "def handler(event):\n    return len(bytearray(2**30))\n", "m.py")
    code, record = run_json(hungry, "--memory", "256")
    assert code == 1 and record["status"] == "killed"
    assert (record["errorType"], record["errorMessage"]) == ("MemoryError", "past its 256 MB limit")


def test_output_is_capped(tmp_path: Path) -> None:
    path = task(tmp_path, "def handler(event):\n    print('x' * 1_000_000)\n    return 1\n")
    code, record = run_json(path)
    assert code == 0 and record["result"] == 1
    logs = str(record["logs"])
    assert len(logs) < 300_000 and logs.endswith("bytes of output not kept]")


def test_a_folder_task_and_its_mistakes(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    (folder / "main.py").write_text(
        "from helper import double\ndef handler(event, context):\n"
        "    return double(event['request']['body']['n'])\n"
    )
    (tmp_path / "payload.json").write_text('{"n": 21}')
    code, record = run_json(folder, "--payload", f"@{tmp_path / 'payload.json'}")
    assert (code, record["result"]) == (0, 42)

    empty = tmp_path / "empty"
    empty.mkdir()
    big = tmp_path / "big"
    big.mkdir()
    (big / "main.py").write_text("def handler(event):\n    pass\n")
    (big / "blob.bin").write_bytes(__import__("os").urandom(6 * 1024 * 1024))
    for args, expected in (
        ([str(tmp_path / "nope.py")], f"error: {tmp_path / 'nope.py'}: no such file or folder"),
        ([str(empty)], f"error: {empty}: a task folder needs a main.py with handler()"),
        ([str(big)], f"error: {big}: the task is 6.3 MB zipped; at most 5 MB"),
        ([str(folder), "--payload", "{bad"], "error: --payload: expected JSON (or @file of JSON)"),
        ([str(folder)], "error: no Kafka to request the run through"),
    ):
        local = [] if args[-1] == str(folder) and len(args) == 1 else ["--local"]
        done = vigil_cli("tasks", "run", *args, *local)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith(expected) and len(done.stderr.splitlines()) == 1


PROBE = """import os, pathlib

def attempt(what, action):
    try:
        action()
        return "allowed"
    except PermissionError:
        return "denied"

def handler(event):
    body = event["request"]["body"]
    found = {
        "data dir": attempt("", lambda: pathlib.Path(body["key"]).read_text()),
        "listing it": attempt("", lambda: os.listdir(pathlib.Path(body["key"]).parent)),
        "another run's dir": attempt("", lambda: pathlib.Path(body["other"]).read_text()),
        "the runner's environment": attempt(
            "", lambda: pathlib.Path(f"/proc/{os.getppid()}/environ").read_bytes()
        ),
        "writing outside": attempt("", lambda: pathlib.Path(body["outside"]).write_text("x")),
    }
    pathlib.Path("scratch.txt").write_text("mine")  # its own directory is its own
    found["own dir"] = pathlib.Path("scratch.txt").read_text()
    found["system"] = len(pathlib.Path("/etc/hostname").read_text()) > 0
    return found
"""


@pytest.mark.skipif(landlock.abi() == 0, reason="the kernel has no Landlock (Linux 5.13+)")
def test_a_run_cannot_reach_vigils_files_or_other_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "api-key").write_text("vigil_0123456789ab_secret")
    other = tmp_path / "vigil-run-other"
    other.mkdir()
    (other / "main.py").write_text("SECRET = 1\n")
    payload = {
        "key": str(data / "api-key"),
        "other": str(other / "main.py"),
        "outside": str(tmp_path / "dropped.txt"),
    }
    code, record = run_json(task(tmp_path, PROBE), "--payload", json.dumps(payload))
    assert code == 0, record
    assert record["result"] == {
        "data dir": "denied",
        "listing it": "denied",
        "another run's dir": "denied",
        "the runner's environment": "denied",
        "writing outside": "denied",
        "own dir": "mine",
        "system": True,
    }
    assert not (tmp_path / "dropped.txt").exists()


def test_a_task_gets_the_projects_address_book(tmp_path: Path) -> None:
    usdt = "0xdac17f958d2ee523a2206206994597c13d831ec7"
    (tmp_path / "vigil.yaml").write_text(
        "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['http://127.0.0.1:9']\n"
        f"contracts:\n  usdt: {{network: mainnet, address: '{usdt}'}}\n"
    )
    path = task(tmp_path, "def handler(event):\n    return event['contracts']\n")
    done = vigil_cli(
        "tasks",
        "run",
        str(path),
        "--local",
        "--format",
        "json",
        env={**ENV, "VIGIL_PROJECT_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["result"] == {"usdt": {"network": "mainnet", "address": usdt}}

"""Runs one task in a sandboxed process and returns its run record.

The sandbox, and what it does not do:
- each run is its own process in a session of its own, in a fresh working directory that
  holds only the task's files, with a scrubbed environment (PATH, HOME = that directory,
  the run's API address and token) and Python in isolated mode (no PYTHON* variables, no
  user site);
- limits: ``timeout`` (the process group is killed) and ``memory_mb`` (RLIMIT_AS, so an
  allocation past it fails inside the run, which is then recorded as killed);
- the run reaches vigil only through the per-run HTTP API (``TaskApi``), whose token dies
  with the run; the event carries the secrets, and they are redacted from what is kept;
- files: a Landlock ruleset (``landlock``) lets the run read the system's and Python's
  trees and write only its working directory (and TMPDIR is that directory); without
  Landlock in the kernel, only file permissions keep it from vigil's data dir;
- it dies with the runner (PR_SET_PDEATHSIG); it is not a container: the network is open.
"""

from __future__ import annotations

import json
import os
import resource
import secrets as tokens
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from vigil.connectors.tasks import landlock

SHIM = Path(__file__).with_name("shim.py")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class Limits:
    timeout: float = 300.0
    memory_mb: int = 256
    log_bytes: int = 256 * 1024


@dataclass
class RunRecord:
    """What a run did; ``as_json`` is the shape `vigil tasks run --format json` prints."""

    status: str  # success, error, timeout, killed
    result: Any = None
    logs: str = ""
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: int = 0
    notifications: list[dict[str, Any]] = field(default_factory=list)

    def failed(self, error_type: str, message: str) -> RunRecord:
        """This run as an error (an answer vigil could not use), its logs kept."""
        return RunRecord("error", None, self.logs, error_type, message, self.duration_ms)

    def ended(self, at_ms: int) -> dict[str, Any]:
        """How the run ended, as the TaskRun record's fields (the result JSON-encoded)."""
        ok = self.status == "success"
        return {
            "status": self.status,
            "result": json.dumps(self.result, default=str) if ok else None,
            "logs": self.logs,
            "errorType": self.error_type,
            "errorMessage": self.error_message,
            "durationMs": self.duration_ms,
            "finishedAt": at_ms,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "result": self.result,
            "logs": self.logs,
            "errorType": self.error_type,
            "errorMessage": self.error_message,
            "durationMs": self.duration_ms,
        }


def run_record(
    run_id: str,
    task_id: str,
    version: str,
    trigger: str,
    outcome: RunRecord,
    started: int,
    finished: int,
) -> dict[str, Any]:
    """The TaskRun record of a run that ended (a filter's, a hook's…)."""
    return {
        "runId": run_id,
        "taskId": task_id,
        "taskVersion": version,
        "trigger": trigger,
        "startedAt": started,
        **outcome.ended(finished),
    }


class TaskApi(Protocol):
    """What a run may ask of vigil (``context.kv``, ``context.notify``, ``context.relayer``:
    ``relayer(call, body)`` with the call's name, send, replace, query, list, sign,
    sign-typed-data, relayer or jsonrpc); a refusal raises
    ValueError, whose message the task sees. A notification that could not be sent is not
    a refusal: the warning returned goes to the run's logs."""

    def kv_get(self, key: str) -> str | None: ...
    def kv_put(self, key: str, value: str) -> None: ...
    def kv_delete(self, key: str) -> None: ...
    def notify(self, alias: str, subject: str, message: str) -> str | None: ...
    def metric(self, alias: str, name: str, value: float) -> str | None: ...
    def relayer(self, call: str, body: dict[str, Any]) -> Any: ...


def run(
    files: Mapping[str, bytes],
    event: dict[str, Any],
    api: TaskApi,
    limits: Limits = Limits(),
    secrets: Mapping[str, str] | None = None,
    python: Path | None = None,
) -> RunRecord:
    """Run the task ``files`` once on ``event`` with ``python`` (the task's environment's,
    ``envs.interpreter``; default: vigil's own); never raises for what the task does."""
    hidden = {name: value for name, value in (secrets or {}).items() if len(value) >= 4}
    workdir = Path(tempfile.mkdtemp(prefix="vigil-run-"))
    server = _serve(api, token := tokens.token_urlsafe(32))
    try:
        for name, content in files.items():
            target = workdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),  # /tmp holds other runs' directories: out of reach
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",  # -I ignores it; the shim's output is line-buffered
            "VIGIL_TASK_API": f"http://127.0.0.1:{server.server_address[1]}",
            "VIGIL_TASK_TOKEN": token,
        }
        body = json.dumps(event, default=str).encode()
        record = _execute(python or Path(sys.executable), workdir, env, body, limits)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(workdir, ignore_errors=True)
    record.notifications = getattr(api, "sent", [])
    return _redacted(record, hidden)


def _execute(
    python: Path, workdir: Path, env: dict[str, str], event: bytes, limits: Limits
) -> RunRecord:
    outcome_read, outcome_write = os.pipe()
    memory = limits.memory_mb * 1024 * 1024
    readable = {Path(sys.prefix), Path(sys.base_prefix), python.parent.parent, SHIM}
    rules = landlock.Rules.build(workdir, readable)

    def in_child() -> None:  # runs in the child between fork and exec
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if landlock.LIBC is not None:  # a run dies with its runner: no orphan runs
            landlock.LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if rules is not None:
            rules.enforce()

    started = time.monotonic()
    try:
        process = subprocess.Popen(
            [str(python), "-I", "-u", str(SHIM)],
            cwd=workdir,
            env={**env, "VIGIL_TASK_OUTCOME_FD": str(outcome_write)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(outcome_write,),
            preexec_fn=in_child,
        )
    finally:
        os.close(outcome_write)
        if rules is not None:
            rules.close()
    logs = _Capped(limits.log_bytes)
    reader = threading.Thread(target=logs.drain, args=(process.stdout,), daemon=True)
    reader.start()
    assert process.stdin is not None
    try:
        process.stdin.write(event)
        process.stdin.close()
    except BrokenPipeError:
        pass
    timed_out = False
    try:
        process.wait(timeout=limits.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    reader.join(5)
    with os.fdopen(outcome_read, "rb") as pipe:
        raw = pipe.read()
    duration = int((time.monotonic() - started) * 1000)
    text = logs.text()
    if timed_out:
        return RunRecord(
            "timeout", None, text, "Timeout", f"ran past its {limits.timeout:g} s limit", duration
        )
    try:
        outcome = json.loads(raw) if raw else None
    except ValueError:
        outcome = None
    if outcome is None:
        how = (
            f"killed by {signal.Signals(-process.returncode).name}"
            if process.returncode < 0
            else f"exited with status {process.returncode} before reporting"
        )
        return RunRecord("killed", None, text, "Killed", how, duration)
    if outcome.get("ok"):
        return RunRecord("success", outcome.get("result"), text, None, None, duration)
    if outcome.get("errorType") == "MemoryError":
        return RunRecord(
            "killed", None, text, "MemoryError", f"past its {limits.memory_mb} MB limit", duration
        )
    return RunRecord(
        "error", None, text, outcome.get("errorType"), outcome.get("errorMessage"), duration
    )


class _Capped:
    """A run's output, kept up to ``limit`` bytes (the rest is read and counted)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.kept, self.dropped = limit, bytearray(), 0

    def drain(self, stream: Any) -> None:
        for chunk in iter(lambda: stream.read(65536), b""):
            room = self.limit - len(self.kept)
            self.kept.extend(chunk[:room])
            self.dropped += max(0, len(chunk) - room)

    def text(self) -> str:
        text = self.kept.decode(errors="replace")
        return text + (f"\n[{self.dropped} more bytes of output not kept]" if self.dropped else "")


def _redacted(record: RunRecord, hidden: Mapping[str, str]) -> RunRecord:
    """``record`` with every secret value replaced by ``[secret NAME]``, wherever it is."""
    if not hidden:
        return record

    def scrub(text: str) -> str:
        for name, value in sorted(hidden.items(), key=lambda item: -len(item[1])):
            text = text.replace(value, f"[secret {name}]")
        return text

    result = json.loads(scrub(json.dumps(record.result, default=str)))
    return RunRecord(
        record.status,
        result,
        scrub(record.logs),
        record.error_type,
        scrub(record.error_message) if record.error_message else None,
        record.duration_ms,
        json.loads(scrub(json.dumps(record.notifications, default=str))),
    )


def _serve(api: TaskApi, token: str) -> ThreadingHTTPServer:
    """The run's API on 127.0.0.1: kv and notify, for the bearer of ``token`` only."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {token}":
                return self._answer(401, {"detail": "not this run's token"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                answer = self._route(body)
            except (ValueError, KeyError, TypeError) as exc:
                return self._answer(400, {"detail": str(exc)})
            self._answer(200, answer)

        def _route(self, body: dict[str, Any]) -> Any:
            if self.path == "/kv/get":
                return {"value": api.kv_get(_text(body, "key"))}
            if self.path == "/kv/put":
                return api.kv_put(_text(body, "key"), _text(body, "value"))
            if self.path == "/kv/del":
                return api.kv_delete(_text(body, "key"))
            if self.path == "/notify/send":
                alias, subject = _text(body, "alias"), _text(body, "subject")
                return {"warning": api.notify(alias, subject, _text(body, "message"))}
            if self.path == "/notify/metric":
                value = body["value"]
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(f"value: expected a number, got {value!r}")
                name = _text(body, "name")
                return {"warning": api.metric(_text(body, "alias"), name, float(value))}
            if self.path.startswith("/relayer/"):
                return api.relayer(self.path.removeprefix("/relayer/"), body)
            raise ValueError(f"no such call {self.path}")

        def _answer(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits out one poll: at the default 0.5 s it was most of a short run's cost
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server


def _text(body: dict[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string, got {type(value).__name__}")
    return value

"""The program a task run executes, in its own process: ``python -I shim.py``.

It imports nothing of vigil (the run sees neither vigil's code nor its settings). The run
protocol is language-neutral, so another runtime needs only its own shim:
- the event arrives as JSON on stdin;
- ``context.kv`` and ``context.notify`` are HTTP calls to ``VIGIL_TASK_API`` with the
  run's own token (``Authorization: Bearer``), which allows that run and nothing else;
- the outcome goes to the file descriptor ``VIGIL_TASK_OUTCOME_FD`` names, as one JSON
  object: ``{"ok": true, "result": …}``
  or ``{"ok": false, "errorType": …, "errorMessage": …}``;
- stdout and stderr are the run's logs.
"""

import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable
from typing import Any

# asyncio, urllib and traceback are imported where used: a run that needs none of them
# starts sooner (each import is milliseconds of every run's start)


class TaskError(Exception):
    """vigil refused a call of the task (an unknown alias, a value too long…)."""


def _call(path: str, body: dict[str, Any]) -> Any:
    import contextlib
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        os.environ["VIGIL_TASK_API"] + path,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": "Bearer " + os.environ["VIGIL_TASK_TOKEN"],
            "Content-Type": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError):
            detail = json.loads(detail).get("detail", detail)
        raise TaskError(str(detail)) from None


class KeyValueStore:
    """context.kv: string keys (1 KB) and values (300 KB), shared by every task."""

    def get(self, key: str) -> str | None:
        value: str | None = _call("/kv/get", {"key": key})["value"]
        return value

    def put(self, key: str, value: str) -> None:
        _call("/kv/put", {"key": key, "value": value})

    def delete(self, key: str) -> None:
        _call("/kv/del", {"key": key})


setattr(KeyValueStore, "del", KeyValueStore.delete)


class Notifications:
    """context.notify: through the project's channels; an unknown alias raises, a failed
    send is a line in the logs."""

    def send(self, alias: str, subject: str, message: str) -> None:
        body = {"alias": alias, "subject": subject, "message": message}
        _warn(_call("/notify/send", body))

    def send_metric(self, alias: str, name: str, value: float) -> None:
        _warn(_call("/notify/metric", {"alias": alias, "name": name, "value": value}))


def _warn(answer: Any) -> None:
    """A send that failed does not raise (the hosted service's rule); the logs say so."""
    if isinstance(answer, dict) and answer.get("warning"):
        print("vigil: notification not sent: " + answer["warning"], file=sys.stderr)


class Relayer:
    """context.relayer: the relayer the task file names (``relayer:``), through vigil, with
    the Relay API's shapes (camelCase); its key never enters the run."""

    def send_transaction(self, tx: dict[str, Any]) -> Any:
        return _call("/relayer/send", tx)

    def replace_transaction(self, id_or_nonce: Any, tx: dict[str, Any]) -> Any:
        return _call("/relayer/replace", {"id": str(id_or_nonce), "tx": tx})

    def query(self, transaction_id: str) -> Any:
        return _call("/relayer/query", {"id": transaction_id})

    def list(self, status: Any = None, since: Any = None, limit: int = 50) -> Any:
        return _call("/relayer/list", {"status": status, "since": since, "limit": limit})

    def sign(self, message: str) -> Any:
        return _call("/relayer/sign", {"message": message})

    def sign_typed_data(self, domain_separator: str, hash_struct_message: str) -> Any:
        body = {"domainSeparator": domain_separator, "hashStructMessage": hash_struct_message}
        return _call("/relayer/sign-typed-data", body)

    def get_relayer(self) -> Any:
        return _call("/relayer/relayer", {})

    def call(self, method: str, params: Any = ()) -> Any:
        """A JSON-RPC read on the relayer's network; its error raises TaskError."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        answer = _call("/relayer/jsonrpc", body)
        if "error" in answer:
            raise TaskError(answer["error"].get("message", str(answer["error"])))
        return answer["result"]

    def provider(self) -> Any:
        """A web3.py HTTPProvider on the relayer's network (web3 in requirements.txt)."""
        from web3 import HTTPProvider

        headers = {
            "Authorization": "Bearer " + os.environ["VIGIL_TASK_TOKEN"],
            "Content-Type": "application/json",
        }
        url = os.environ["VIGIL_TASK_API"] + "/relayer/jsonrpc"
        return HTTPProvider(url, request_kwargs={"headers": headers})


class Context:
    def __init__(self) -> None:
        self.kv = KeyValueStore()
        self.notify = Notifications()
        self.relayer = Relayer()


def _handler() -> Callable[..., Any]:
    spec = importlib.util.spec_from_file_location("main", os.path.join(os.getcwd(), "main.py"))
    if spec is None or spec.loader is None:
        raise TaskError("main.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules["main"] = module
    spec.loader.exec_module(module)
    handler = getattr(module, "handler", None)
    if not callable(handler):
        raise TaskError("main.py defines no handler(event, context)")
    found: Callable[..., Any] = handler
    return found


def main() -> None:
    out = os.fdopen(int(os.environ.pop("VIGIL_TASK_OUTCOME_FD")), "w")
    try:
        event = json.load(sys.stdin)
        sys.path.insert(0, os.getcwd())
        handler = _handler()
        parameters = len(inspect.signature(handler).parameters)
        args = (event, Context())[: max(1, min(parameters, 2))]
        result = handler(*args)
        if inspect.isawaitable(result):
            import asyncio

            result = asyncio.run(_awaited(result))
        json.dump({"ok": True, "result": result}, out, default=str)
    except BaseException as exc:  # the task's own failure, reported, never re-raised
        import traceback

        # the task's frames only: the shim's own say nothing to its author
        frames = exc.__traceback__.tb_next if exc.__traceback__ else None
        traceback.print_exception(type(exc), exc, frames)
        message = str(exc) or type(exc).__name__
        json.dump({"ok": False, "errorType": type(exc).__name__, "errorMessage": message}, out)
    finally:
        out.flush()


async def _awaited(result: Any) -> Any:
    return await result


if __name__ == "__main__":
    main()

"""A JSON-RPC server that answers from recorded mainnet data, with injectable faults."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

HANG_SECONDS = 5.0  # how long a "hang" fault of JsonRpcServer holds a request


class JsonRpcServer:
    """A JSON-RPC endpoint on 127.0.0.1 for tests: recorded blocks, or a proxy, with faults.

    ``blocks`` maps a number to (``eth_getBlockByNumber`` result, receipts or None); a block
    whose receipts are None answers ``eth_getBlockReceipts`` with -32601 (method not found),
    so clients must fall back to ``eth_getTransactionReceipt``. With ``upstream`` every call is
    forwarded there instead. ``head`` overrides the chain head (default: the highest block
    held) and ``tags`` the numbers of ``safe``/``finalized``. ``faults`` scripts the first
    answers: an HTTP status (429 comes with ``Retry-After: 0``), ``"close"`` (drop the
    connection), ``"hang"`` (answer nothing for ``HANG_SECONDS``) or ``"garbage"`` (not JSON).
    """

    def __init__(
        self,
        *,
        chain_id: int = 1,
        upstream: str | None = None,
        blocks: dict[int, tuple[dict[str, Any], list[dict[str, Any]] | None]] | None = None,
        faults: list[int | str] | None = None,
        head: int | None = None,
        tags: dict[str, int] | None = None,
        refuse: set[str] | None = None,
    ) -> None:
        self.chain_id, self.upstream = chain_id, upstream
        self.refuse = set(refuse or ())  # methods answered -32601, as a node without them
        self.head, self.tags = head, dict(tags or {})
        self.blocks = blocks or {}
        self.faults = list(faults or [])
        self.requests: list[str] = []
        self.paths: list[str] = []  # the request path of every POST (where keys travel)
        self._server: ThreadingHTTPServer | None = None
        self._receipts = {
            r["transactionHash"]: r for _, rs in self.blocks.values() if rs for r in rs
        }

    def add_receipts(self, receipts: list[dict[str, Any]]) -> None:
        """Receipts answered by ``eth_getTransactionReceipt`` only."""
        self._receipts.update({r["transactionHash"]: r for r in receipts})

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params = request["method"], request.get("params", [])
        self.requests.append(method)
        result: Any = None
        error: dict[str, Any] | None = None
        head = self.head if self.head is not None else max(self.blocks, default=0)
        if method == "eth_chainId":
            result = hex(self.chain_id)
        elif method == "eth_blockNumber":
            result = hex(head)
        elif method == "eth_getBlockByNumber":
            tag = params[0]
            number = (
                self.tags.get(tag, head) if tag in ("latest", "safe", "finalized") else int(tag, 16)
            )
            found = self.blocks.get(number)
            result = found[0] if found else None
        elif method == "eth_getBlockReceipts":
            found = self.blocks.get(int(params[0], 16))
            if found and found[1] is None:
                error = {
                    "code": -32601,
                    "message": "the method eth_getBlockReceipts does not exist",
                }
            else:
                result = found[1] if found else None
        elif method == "eth_getTransactionReceipt":
            result = self._receipts.get(params[0])
        else:
            error = {"code": -32601, "message": f"the method {method} does not exist"}
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        reply.update({"error": error} if error else {"result": result})
        return reply

    def _forward(self, request: Any) -> Any:
        """Forward to ``upstream`` all but the ``refuse`` methods, which get -32601."""
        calls = request if isinstance(request, list) else [request]
        self.requests.extend(c["method"] for c in calls)
        passed = [c for c in calls if c["method"] not in self.refuse]
        answers: dict[Any, Any] = {}
        if passed:
            assert self.upstream is not None
            reply = httpx.post(self.upstream, json=passed, timeout=30).json()
            answers = {a["id"]: a for a in reply}
        for call in calls:
            if call["method"] in self.refuse:
                answers[call["id"]] = {
                    "jsonrpc": "2.0",
                    "id": call["id"],
                    "error": {
                        "code": -32601,
                        "message": f"the method {call['method']} does not exist",
                    },
                }
        ordered = [answers[c["id"]] for c in calls]
        return ordered if isinstance(request, list) else ordered[0]

    def start(self) -> JsonRpcServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.paths.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fault = outer.faults.pop(0) if outer.faults else None
                if fault == "hang":  # answer nothing for longer than any client waits
                    time.sleep(HANG_SECONDS)
                    return
                if fault == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if isinstance(fault, int):
                    self.send_response(fault)
                    if fault == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "4")
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                if fault == "garbage":
                    payload = b"<html>gateway</html>"
                elif outer.upstream and outer.refuse:
                    payload = json.dumps(outer._forward(json.loads(body))).encode()
                elif outer.upstream:
                    payload = httpx.post(
                        outer.upstream,
                        content=body,
                        timeout=30,
                        headers={"Content-Type": "application/json"},
                    ).content
                else:
                    request = json.loads(body)
                    answer: Any = (
                        [outer._answer(r) for r in request]
                        if isinstance(request, list)
                        else outer._answer(request)
                    )
                    payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving; safe to call when start() never ran."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

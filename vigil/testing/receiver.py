"""A webhook receiver on 127.0.0.1 that records what it is sent: a channel to assert on."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records every POST; ``statuses`` scripts its answers."""

    port: int = 0
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    reply: bytes = b"{}"  # the body of every answer (an API's success shape)
    headers: dict[str, str] = field(default_factory=dict)  # sent with scripted failures
    on_receive: Callable[[Received], None] | None = None
    # GET: the answer (status, JSON body) to a path; 404 without it. ``fetched``: the paths
    on_get: Callable[[str], tuple[int, Any]] | None = None
    fetched: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    def start(self) -> WebhookReceiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                item = Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                status = outer.statuses.pop(0) if outer.statuses else 200
                if status < 300:
                    outer.received.append(item)
                    if outer.on_receive is not None:
                        outer.on_receive(item)
                body = outer.reply if status < 300 else b'{"error": "scripted failure"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if status >= 300:
                    for name, value in outer.headers.items():
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                outer.fetched.append(self.path)
                status, answer = outer.on_get(self.path) if outer.on_get else (404, {})
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/vigil"

    def stop(self) -> None:
        """Stop serving; safe to call when start() never ran."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

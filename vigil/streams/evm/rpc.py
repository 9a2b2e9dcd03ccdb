"""A small JSON-RPC client: batched calls, orjson parsing, errors that name endpoint and method."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import orjson

from vigil.errors import RpcError


class RpcClient:
    """Calls one JSON-RPC endpoint; web3's formatting stays off this hot path."""

    def __init__(self, url: str, *, timeout: float = 15.0) -> None:
        self.url = url
        self._http = httpx.Client(timeout=timeout, headers={"Content-Type": "application/json"})
        self._ids = itertools.count(1)

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, list(params))])[0]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Send ``calls`` as one batch; results in call order; an error names its method."""
        requests = [
            {"jsonrpc": "2.0", "id": next(self._ids), "method": m, "params": p} for m, p in calls
        ]
        what = ", ".join(sorted({m for m, _ in calls}))
        try:
            response = self._http.post(
                self.url, content=orjson.dumps(requests if len(requests) > 1 else requests[0])
            )
        except httpx.HTTPError as exc:
            raise RpcError(f"{self.url} {what}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise RpcError(
                f"{self.url} {what}: HTTP {response.status_code} {response.text[:200]!r}"
            )
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise RpcError(f"{self.url} {what}: response is not JSON: {exc}") from exc
        replies = body if isinstance(body, list) else [body]
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        results = []
        for request in requests:
            reply = by_id.get(request["id"])
            if reply is None:
                raise RpcError(f"{self.url} {request['method']}: no reply in the batch")
            if "error" in reply:
                raise RpcError(
                    f"{self.url} {request['method']}{request['params']}: {reply['error']}"
                )
            results.append(reply.get("result"))
        return results

    def close(self) -> None:
        self._http.close()

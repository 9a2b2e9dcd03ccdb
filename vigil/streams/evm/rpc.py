"""JSON-RPC over HTTP: one client per endpoint, and a weighted pool with retries and failover."""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from vigil import metrics
from vigil.config.models import NetworkConfig, RpcEndpoint
from vigil.config.urls import redact, references
from vigil.errors import ConfigError, RpcError, RpcReplyError, RpcUnavailable
from vigil.settings import Settings

log = logging.getLogger(__name__)
Call = tuple[str, list[Any]]


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


class RpcClient:
    """Batched calls to one endpoint; web3's formatting stays off this hot path."""

    def __init__(self, url: str, *, timeout: float = 15.0) -> None:
        self.url, self.shown = url, redact(url)  # errors and logs name `shown`, never `url`
        self._http = httpx.Client(timeout=timeout, headers={"Content-Type": "application/json"})
        self._ids = itertools.count(1)
        host = metrics.endpoint(url)
        self._requests = metrics.RPC_REQUESTS.labels(host)
        self._seconds = metrics.RPC_SECONDS.labels(host)
        self._errors = {
            kind: metrics.RPC_ERRORS.labels(host, kind) for kind in ("transport", "reply")
        }

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, list(params))])[0]

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Results in call order; errors name the endpoint and the method."""
        self._requests.inc()
        try:
            with self._seconds.time():
                return self._batch(calls)
        except RpcUnavailable:
            self._errors["transport"].inc()
            raise
        except RpcReplyError:
            self._errors["reply"].inc()
            raise

    def _batch(self, calls: Sequence[Call]) -> list[Any]:
        requests = [
            {"jsonrpc": "2.0", "id": next(self._ids), "method": m, "params": p} for m, p in calls
        ]
        what = ", ".join(sorted({m for m, _ in calls}))
        try:
            response = self._http.post(
                self.url, content=orjson.dumps(requests if len(requests) > 1 else requests[0])
            )
        except httpx.HTTPError as exc:
            detail = str(exc).replace(self.url, self.shown)
            raise RpcUnavailable(f"{self.shown} {what}: {type(exc).__name__}: {detail}") from None
        if response.status_code != 200:
            raise RpcUnavailable(
                f"{self.shown} {what}: HTTP {response.status_code} {response.text[:200]!r}",
                retry_after=_retry_after(response),
            )
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise RpcUnavailable(f"{self.shown} {what}: the reply is not JSON: {exc}") from exc
        replies = body if isinstance(body, list) else [body]
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        results = []
        for request in requests:
            reply = by_id.get(request["id"])
            if reply is None:
                raise RpcUnavailable(f"{self.shown} {request['method']}: no reply in the batch")
            if "error" in reply:
                error = reply["error"] if isinstance(reply["error"], dict) else {}
                raise RpcReplyError(
                    f"{self.shown} {request['method']}{request['params']}: {reply['error']}",
                    method=str(request["method"]),
                    code=error.get("code"),
                )
            if "result" not in reply:
                raise RpcUnavailable(f"{self.shown} {request['method']}: reply without a result")
            results.append(reply["result"])
        return results

    def close(self) -> None:
        self._http.close()


@dataclass
class Endpoint:
    """One endpoint of a pool, with its health and counters."""

    url: str
    weight: int
    client: RpcClient
    shown: str = ""
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    consecutive_failures: int = 0
    down_until: float = 0.0
    last_error: str | None = field(default=None, repr=False)

    def metrics(self, now: float) -> dict[str, Any]:
        return {
            "url": self.shown,
            "weight": self.weight,
            "healthy": now >= self.down_until,
            "requests": self.requests,
            "errors": self.errors,
            "mean_latency_ms": round(1000 * self.seconds / self.requests, 2)
            if self.requests
            else None,
            "last_error": self.last_error,
        }


class RpcPool:
    """Endpoints by weight: retry each with backoff and jitter, then fail over to the next.

    A transient failure (transport, timeout, 429 with Retry-After, 5xx, unreadable body) is
    retried ``attempts`` times on the same endpoint; after that the endpoint rests for
    ``cooldown`` seconds and the next healthy one (highest weight first) takes over. A JSON-RPC
    error reply is the node's answer and is raised at once.
    """

    def __init__(
        self,
        endpoints: Sequence[RpcEndpoint],
        *,
        attempts: int = 3,
        base_delay: float = 0.25,
        max_delay: float = 10.0,
        cooldown: float = 30.0,
        timeout: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = [
            Endpoint(e.url, e.weight, RpcClient(e.url, timeout=timeout), redact(e.url))
            for e in endpoints
        ]
        self.attempts, self.base_delay, self.max_delay = attempts, base_delay, max_delay
        self.cooldown, self._sleep, self._clock = cooldown, sleep, clock

    @property
    def shown(self) -> str:
        """The endpoint tried first, as logs show it (scheme and host)."""
        return self._order()[0].shown

    @classmethod
    def for_network(
        cls, name: str, config: NetworkConfig, settings: Settings, **options: Any
    ) -> RpcPool:
        """The pool of network ``name``, each ``${NAME}`` in its URLs replaced by the secret
        or environment variable it names; a name that is not set is a ConfigError."""
        endpoints = []
        for i, endpoint in enumerate(config.rpc_urls):
            values = {ref: settings.reference(ref) for ref in references(endpoint.url)}
            unset = [ref for ref, value in values.items() if value is None]
            if unset:
                raise ConfigError(
                    f"{redact(endpoint.url)} refers to ${{{unset[0]}}}, which is not set; "
                    "provide it in VIGIL_SECRETS or the environment",
                    obj=f"network {name!r}",
                    field=f"rpc_urls[{i}]",
                )
            url = endpoint.url
            for ref, value in values.items():
                url = url.replace(f"${{{ref}}}", value or "")
            endpoints.append(endpoint.model_copy(update={"url": url}))
        return cls(endpoints, **options)

    def _order(self) -> list[Endpoint]:
        now = self._clock()
        healthy = [e for e in self.endpoints if now >= e.down_until]
        resting = sorted(
            (e for e in self.endpoints if now < e.down_until), key=lambda e: e.down_until
        )
        return sorted(healthy, key=lambda e: -e.weight) + resting

    def _delay(self, attempt: int, error: RpcUnavailable) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, self.max_delay)
        backoff: float = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return backoff * random.uniform(0.5, 1.0)

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, list(params))])[0]

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        last: RpcUnavailable | None = None
        for endpoint in self._order():
            for attempt in range(1, self.attempts + 1):
                started = self._clock()
                endpoint.requests += 1
                try:
                    results = endpoint.client.batch(calls)
                except RpcUnavailable as exc:
                    endpoint.errors += 1
                    endpoint.consecutive_failures += 1
                    endpoint.last_error = str(exc)
                    last = exc
                    log.warning("%s (attempt %d/%d)", exc, attempt, self.attempts)
                    if attempt < self.attempts:
                        self._sleep(self._delay(attempt, exc))
                    continue
                except RpcReplyError:
                    endpoint.seconds += self._clock() - started
                    raise
                endpoint.seconds += self._clock() - started
                endpoint.consecutive_failures = 0
                return results
            endpoint.down_until = self._clock() + self.cooldown
            if len(self.endpoints) > 1:
                log.warning(
                    "%s failed %d times; failing over for %.0f s",
                    endpoint.shown,
                    self.attempts,
                    self.cooldown,
                )
        raise RpcUnavailable(f"all {len(self.endpoints)} RPC endpoint(s) failed; last: {last}")

    def metrics(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [e.metrics(now) for e in self.endpoints]

    def close(self) -> None:
        for endpoint in self.endpoints:
            endpoint.client.close()


__all__ = ["Endpoint", "RpcClient", "RpcError", "RpcPool"]

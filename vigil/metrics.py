"""Prometheus metrics of every vigil process, named by Prometheus conventions.

Each process has its own registry (the default one) and serves it: `vigil serve` on its API's
``/metrics``, `vigil worker` and `vigil ingest` on VIGIL_WORKER_METRICS_BIND and
VIGIL_INGEST_METRICS_BIND. Labels stay bounded: networks, monitors and channels are the
project's; RPC endpoints are named by host only (a URL may carry an API key).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from vigil.errors import SettingsError

INGEST_HEAD = Gauge("vigil_ingest_head_block", "the node's latest block", ["network"])
INGEST_EMITTED = Gauge("vigil_ingest_emitted_block", "the last block emitted", ["network"])
INGEST_LAG = Gauge("vigil_ingest_lag_blocks", "blocks behind the node's head", ["network"])
RPC_REQUESTS = Counter("vigil_rpc_requests_total", "JSON-RPC requests sent", ["endpoint"])
RPC_ERRORS = Counter(
    "vigil_rpc_errors_total", "JSON-RPC requests that failed, by kind", ["endpoint", "kind"]
)
RPC_SECONDS = Histogram(
    "vigil_rpc_request_seconds",
    "JSON-RPC request latency",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECORDS = Counter("vigil_records_total", "records written, by topic", ["topic"])
MATCHES = Counter("vigil_matches_total", "matches, by monitor", ["monitor"])
SUPPRESSED = Counter(
    "vigil_suppressed_total", "matches that notified no one, by reason", ["monitor", "reason"]
)
DELIVERIES = Counter(
    "vigil_deliveries_total", "delivery outcomes, by channel", ["channel", "type", "status"]
)
DEAD_LETTERS = Counter(
    "vigil_dead_letters_total", "records sent to the dead-letter topic", ["topic"]
)
DLQ_RECORDS = Gauge("vigil_dlq_records", "records on the dead-letter topic now")
HISTORY_LAG = Gauge("vigil_history_lag_records", "records the history sink has yet to store")
HISTORY_ROWS = Counter("vigil_history_rows_total", "rows inserted into ClickHouse", ["table"])


def serve(bind: str, setting: str) -> None:
    """Serve this process's metrics on ``bind`` (host:port) at /metrics, in a thread."""
    host, _, port = bind.rpartition(":")
    try:
        start_http_server(int(port), addr=host)
    except OSError as exc:
        raise SettingsError(
            f"{setting}: cannot serve metrics on {bind} ({exc.strerror}); set it to a free port"
        ) from None


def endpoint(url: str) -> str:
    """An RPC URL's label: its host (and port), never its path or query."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or "?"

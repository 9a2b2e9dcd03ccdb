"""Ingest throughput from a recorded-data JSON-RPC server into the embedded Kafka broker.

Serves a linked chain made of block 18,000,000's content (94 transactions, 291 logs per
block, receipts by eth_getBlockReceipts) from a pre-rendered server in its own process, and
measures the ingester (batched JSON-RPC fetch, parse, normalize, Avro, produce, checkpoint).
Baseline, same run: parsing the same responses with orjson alone. Run with ``make bench``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.matching import rate  # noqa: E402
from tests.helpers import linked_chain  # noqa: E402
from vigil.config.models import NetworkConfig  # noqa: E402
from vigil.schemas.codec import Codec  # noqa: E402
from vigil.schemas.registry import SchemaStore  # noqa: E402
from vigil.settings import load_settings  # noqa: E402
from vigil.stack.broker import EmbeddedKafka, free_port  # noqa: E402
from vigil.streams.evm.ingester import Ingester  # noqa: E402
from vigil.streams.kafka import BatchProducer, ensure_topics  # noqa: E402

BLOCKS = int(os.environ.get("BENCH_BLOCKS", "300"))


def serve(port: int, length: int) -> None:
    """A JSON-RPC server whose results are rendered once: its own cost stays small."""
    chain = linked_chain(length)
    head = max(chain)
    blocks = {n: orjson.dumps(b) for n, (b, _) in chain.items()}
    receipts = {n: orjson.dumps(r) for n, (_, r) in chain.items()}

    def result(request: dict[str, Any]) -> bytes:
        method, params = request["method"], request.get("params", [])
        if method == "eth_chainId":
            return b'"0x1"'
        if method == "eth_blockNumber":
            return orjson.dumps(hex(head))
        number = int(params[0], 16)
        return (blocks if method == "eth_getBlockByNumber" else receipts).get(number, b"null")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls = body if isinstance(body, list) else [body]
            parts = [
                b'{"jsonrpc":"2.0","id":' + orjson.dumps(c["id"]) + b',"result":' + result(c) + b"}"
                for c in calls
            ]
            payload = b"[" + b",".join(parts) + b"]" if isinstance(body, list) else parts[0]
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    chain = linked_chain(BLOCKS)
    responses = [(orjson.dumps(b), orjson.dumps(r)) for b, r in chain.values()]
    transactions = len(chain[18_000_000][0]["transactions"])
    parse = rate(lambda: [(orjson.loads(b), orjson.loads(r)) for b, r in responses[:20]], 20)
    port = free_port()
    server = multiprocessing.get_context("fork").Process(
        target=serve, args=(port, BLOCKS), daemon=True
    )
    server.start()
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedKafka(load_settings(data_dir=Path(tmp) / "broker"))
        bootstrap = broker.start()
        try:
            settings = load_settings(data_dir=Path(tmp) / "data", kafka_bootstrap=bootstrap)
            ensure_topics(settings, bootstrap)
            network = NetworkConfig(
                chain_id=1,
                rpc_urls=[f"http://127.0.0.1:{port}"],
                start_block=18_000_000,
                poll_interval=0.05,
                batch_size=10,
                max_catch_up=BLOCKS,
            )
            ingester = Ingester(
                settings,
                "mainnet",
                network,
                BatchProducer(settings, bootstrap),
                Codec(SchemaStore()),
                bootstrap,
            )
            time.sleep(0.5)  # the server process binds its port
            started = time.perf_counter()
            thread = threading.Thread(target=ingester.run, daemon=True)
            thread.start()
            while ingester.emitted < BLOCKS:
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
            ingester.stopping.set()
            thread.join(30)
        finally:
            broker.stop()
            server.terminate()
    blocks_s = BLOCKS / elapsed
    print(
        f"ingest, {BLOCKS} blocks of block 18,000,000's content ({transactions} tx each), "
        "batches of 10, into the embedded broker"
    )
    print(f"  baseline: orjson parse of the same responses {parse:>9,.0f} blocks/s")
    print(
        f"  ingester (fetch, parse, normalize, Avro, produce) {blocks_s:>6,.0f} blocks/s "
        f"{blocks_s * transactions:>9,.0f} tx/s  ({blocks_s / parse:.2f}x of parse alone)"
    )
    figures = {
        "blocks_s": round(blocks_s, 1),
        "tx_s": round(blocks_s * transactions),
        "limit_blocks_s": round(parse, 1),
        "ratio": round(blocks_s / parse, 3),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

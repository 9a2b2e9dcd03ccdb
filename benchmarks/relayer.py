"""Relayer sends against anvil, each stage measured in the same run:
- baseline: eth-account signs a transfer and ``eth_sendRawTransaction`` hands it to anvil,
  one after another (what any relayer must do at the least);
- through vigil: ``Relay.send`` as the Relay API calls it (the policies, a request on
  ``relayer.requests`` on a real KRaft broker, the owner assigning the nonce, pricing,
  signing, recording ``sent``, broadcasting, recording ``submitted``), SENDS of them from
  8 threads: sends/s accepted, and accepted → submitted (p50/p99).
Run with ``make bench``; the last line is JSON."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from kafka import TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vigil.config.models import NetworkConfig  # noqa: E402
from vigil.config.relayers import CreateRelayerRequest, SendTransactionRequest  # noqa: E402
from vigil.connectors.tasks.secrets import new_key  # noqa: E402
from vigil.demo.chain import Anvil  # noqa: E402
from vigil.schemas.codec import Codec  # noqa: E402
from vigil.schemas.registry import SchemaStore  # noqa: E402
from vigil.settings import load_settings  # noqa: E402
from vigil.stack.broker import EmbeddedKafka  # noqa: E402
from vigil.streams.kafka import consumer, ensure_topics  # noqa: E402
from vigil.streams.relayer_owner import RelayerOwner  # noqa: E402
from vigil.streams.relayers import Relay  # noqa: E402

SENDS = 200
TO = "0x179810822f56b0e79469189741a3fa5f2f9a7631"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def baseline(anvil: Anvil) -> float:
    """Signed and sent by hand: sends/s."""
    account = Account.create()
    anvil.rpc("anvil_setBalance", account.address, hex(10**20))
    client = httpx.Client()
    started = time.perf_counter()
    for nonce in range(SENDS):
        tx = {
            "chainId": 31337,
            "nonce": nonce,
            "to": Account.create().address,
            "value": 1,
            "gas": 21000,
            "gasPrice": 2 * 10**9,
        }
        raw = "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()
        body = {"jsonrpc": "2.0", "id": nonce, "method": "eth_sendRawTransaction", "params": [raw]}
        assert "result" in client.post(anvil.url, json=body).json()
    took = time.perf_counter() - started
    client.close()
    return SENDS / took


def through_vigil(root: Path, anvil: Anvil) -> tuple[float, list[float]]:
    broker = EmbeddedKafka(load_settings(data_dir=root / "broker"))
    broker.start()
    try:
        settings = load_settings(
            data_dir=root / "data",
            kafka_bootstrap=broker.bootstrap,
            topic_prefix="bench",
            group_prefix="bench",
            secrets_key=new_key(),
        )
        bootstrap = broker.bootstrap
        ensure_topics(settings, bootstrap)
        codec = Codec(SchemaStore())
        networks = {"anvil": NetworkConfig(chain_id=31337, rpc_urls=[anvil.url])}  # type: ignore[list-item]
        relay = Relay(settings, bootstrap, codec, networks)
        relay.start()
        owner = RelayerOwner(
            settings, bootstrap, codec, Relay(settings, bootstrap, codec, networks)
        )
        thread = threading.Thread(target=owner.run, daemon=True)
        thread.start()
        relayer = relay.registry.create(
            CreateRelayerRequest(name="bench", network="anvil", minBalance=0)
        )
        anvil.rpc("anvil_setBalance", relayer.address, hex(10**20))
        body = SendTransactionRequest.model_validate(
            {"to": TO, "value": "1", "gasLimit": 21000, "speed": "fast"}
        )
        for _ in range(3):  # the owner's group joined, its caches warm
            relay.send(relayer, body, wait=60)
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            sent = list(pool.map(lambda _: relay.send(relayer, body, wait=60), range(SENDS)))
        took = time.perf_counter() - started
        assert sorted(s["nonce"] for s in sent) == list(range(3, SENDS + 3)), "nonces"
        ids = {answer["transactionId"] for answer in sent}
        latencies = submitted_after(settings, bootstrap, codec, ids)
        owner.stopping.set()
        thread.join(15)
        relay.close()
        return SENDS / took, latencies
    finally:
        broker.stop()


def submitted_after(settings: Any, bootstrap: str, codec: Codec, ids: set[str]) -> list[float]:
    """For each of ``ids``, ms from its request's creation to its first ``submitted`` record
    (read from relayer.transactions, where each status change is a record)."""
    topic = settings.topic("relayer.transactions")
    reader = consumer(settings, bootstrap)
    part = TopicPartition(topic, 0)
    reader.assign([part])
    reader.seek_to_beginning(part)
    end = reader.end_offsets([part])[part]
    first: dict[str, float] = {}
    while reader.position(part) < end:
        for records in reader.poll(timeout_ms=500).values():
            for record in records:
                tx = codec.decode(record.value, "RelayerTransaction", where=topic)
                if tx["transactionId"] in ids and tx["status"] == "submitted":
                    first.setdefault(tx["transactionId"], tx["updatedAt"] - tx["createdAt"])
    reader.close()
    assert set(first) == ids, "every send submitted"
    return list(first.values())


def main() -> None:
    anvil = Anvil().start()
    try:
        base = baseline(anvil)
        with tempfile.TemporaryDirectory() as tmp:
            rate, latencies = through_vigil(Path(tmp), anvil)
    finally:
        anvil.stop()
    print(f"relayer sends to anvil, {SENDS} transfers")
    print(f"  eth-account + eth_sendRawTransaction (baseline) {base:>7.1f} sends/s")
    print(
        f"  vigil's relayer, 8 callers, accepted            {rate:>7.1f} sends/s  "
        f"({rate / base:.2f}x)"
    )
    print(
        f"    accepted → submitted                         "
        f"p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms"
    )
    figures = {
        "baseline_sends_s": round(base, 1),
        "relayer_sends_s": round(rate, 1),
        "ratio": round(rate / base, 2),
        "accepted_to_submitted_p50_ms": round(statistics.median(latencies), 1),
        "accepted_to_submitted_p99_ms": round(percentile(latencies, 0.99), 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from tests.helpers import ApiServer, api_app
from vigil.demo.chain import Anvil
from vigil.schemas.catalogue import REGISTRY_TOPIC
from vigil.schemas.codec import Codec
from vigil.settings import Settings
from vigil.streams.kafka import ensure_topics, read_compacted
from vigil.streams.registry_log import kafka_backed_store

pytestmark = pytest.mark.integration


def test_backfill_reemits_a_range_in_order_without_moving_the_checkpoint(
    settings: Settings, kafka: str, anvil: Anvil, tmp_path: Path
) -> None:
    ensure_topics(settings, kafka)
    anvil.rpc("anvil_mine", hex(25))
    last = int(anvil.rpc("eth_blockNumber"), 16)
    first = last - 19
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "vigil.yaml").write_text(
        f"networks:\n  anvil:\n    chain_id: 31337\n    rpc_urls: ['{anvil.url}']\n"
        "    batch_size: 7\n"
    )
    store = kafka_backed_store(settings, kafka, settings.topic(REGISTRY_TOPIC))
    with ApiServer(api_app(store=store)) as api:
        env = {
            **os.environ,
            **settings.child_env(),
            **api.env,
            "VIGIL_PROJECT_DIR": str(tmp_path / "project"),
        }
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "vigil",
                "backfill",
                "--network",
                "anvil",
                "--from",
                str(first),
                "--to",
                str(last),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert f"re-emitted 20 blocks of anvil ({first}..{last})" in done.stdout
        wrong = subprocess.run(
            [
                sys.executable,
                "-m",
                "vigil",
                "backfill",
                "--network",
                "goerli",
                "--from",
                "1",
                "--to",
                "2",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert wrong.returncode == 2
        assert "unknown network 'goerli'; the project defines: anvil" in wrong.stderr
    consumer = KafkaConsumer(
        settings.topic("chain.blocks"),
        bootstrap_servers=kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    codec = Codec(store)
    records = [(r.key, codec.decode(r.value, "Block")["number"]) for r in consumer]
    consumer.close()
    assert [number for _, number in records] == list(range(first, last + 1))
    assert {key for key, _ in records} == {b"anvil"}  # one network, one partition, in order
    assert read_compacted(settings, kafka, settings.topic("chain.checkpoints")) == {}

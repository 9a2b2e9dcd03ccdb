"""The whole stack on a broker that demands a SASL/SCRAM login: every role (ingest, worker,
serve's history sink and registry, the CLI) logs in; a wrong password is named at start."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import LARGE, Running, stack_settings, write_project
from tests.helpers import vigil_cli
from vigil.demo.chain import Anvil, Token
from vigil.errors import BrokerError
from vigil.settings import Settings, load_settings
from vigil.stack.broker import EmbeddedKafka, bootstrap_ready
from vigil.stack.supervisor import Stack
from vigil.streams.kafka import ensure_topics
from vigil.testing import WebhookReceiver, wait_for

pytestmark = pytest.mark.e2e
USER, PASSWORD = "vigil-svc", "s3cret-scram-pw"


def scram(**overrides: object) -> Settings:
    return load_settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        **overrides,
    )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A KRaft broker whose only client listener is SASL_PLAINTEXT with one SCRAM user."""
    broker = EmbeddedKafka(scram(data_dir=tmp_path_factory.mktemp("sasl-broker")))
    bootstrap = broker.start()
    yield bootstrap
    broker.stop()


def test_every_role_logs_in_with_scram(
    secured: str, tmp_path: Path, anvil: Anvil, prefix: str
) -> None:
    assert not bootstrap_ready(secured, 3.0)  # no login, no metadata
    token = Token(anvil.url)
    start = int(anvil.rpc("eth_blockNumber"), 16) + 1
    receiver = WebhookReceiver().start()
    write_project(tmp_path / "project", anvil, token, receiver, start)
    settings = stack_settings(
        tmp_path,
        secured,
        prefix,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
    )
    stack = Stack(settings, say=print)
    stack.start()
    try:
        running = Running(stack, token, receiver, anvil)
        block = running.mine_transfers(LARGE)
        wait_for(lambda: stack.check() or receiver.received, 90, "the webhook POST")
        assert int(receiver.received[0].json()["events"][0]["blockNumber"], 16) == block
        wait_for(
            lambda: running.sql("SELECT count() FROM matches FINAL") == [[1]] or None,
            60,
            "the match in ClickHouse",
        )
        # the CLI logs in with the same settings (the keys topic, read and written)
        env = {key: value for key, value in settings.child_env().items() if key != "VIGIL_API_KEY"}
        made = vigil_cli("keys", "create", "--name", "ops", "--scope", "sql:read", env=env)
        assert made.returncode == 0, made.stderr
        listed = vigil_cli("keys", "list", "--format", "json", env=env)
        assert listed.returncode == 0 and '"ops"' in listed.stdout, listed.stderr
        wrong = {**env, "VIGIL_KAFKA_SASL_PASSWORD": "not-the-password"}
        refused = vigil_cli("keys", "list", env=wrong)
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == [
            f"error: Kafka at {secured} refused the login of VIGIL_KAFKA_SASL_USERNAME "
            f"'{USER}' (SCRAM-SHA-256): check VIGIL_KAFKA_SASL_PASSWORD and "
            "VIGIL_KAFKA_SASL_MECHANISM"
        ]
        assert "not-the-password" not in refused.stderr + refused.stdout
    finally:
        stack.stop()
        receiver.stop()


def test_a_wrong_password_is_named_at_start(secured: str, tmp_path: Path) -> None:
    wrong = load_settings(
        data_dir=tmp_path,
        kafka_bootstrap=secured,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username=USER,
        kafka_sasl_password="wrong",
    )
    with pytest.raises(BrokerError, match="refused the login of VIGIL_KAFKA_SASL_USERNAME"):
        ensure_topics(wrong, secured)

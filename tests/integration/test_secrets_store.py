"""Secrets sealed with the operator's key on a real broker: set from stdin only, listed by
name only, never stored in the clear, opened by the right key alone."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import vigil_cli
from vigil.connectors.tasks.secrets import new_key, parse_key, seal, unseal
from vigil.errors import SettingsError
from vigil.schemas.catalogue import SECRETS_TOPIC
from vigil.settings import Settings, load_settings
from vigil.streams.kafka import ensure_topics, read_compacted
from vigil.streams.secrets import with_stored_secrets

pytestmark = pytest.mark.integration
VALUE = "xoxb-the-slack-token-1234"


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil", "secrets", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_secrets_are_sealed_listed_by_name_and_opened_by_the_key_alone(
    settings: Settings, kafka: str, tmp_path: Path
) -> None:
    ensure_topics(settings, kafka)
    key = vigil_cli("secrets", "new-key").stdout.strip()
    env = {
        "VIGIL_KAFKA_BOOTSTRAP": kafka,
        "VIGIL_TOPIC_PREFIX": settings.topic_prefix,
        "VIGIL_SECRETS_KEY": key,
    }
    done = cli(env, "set", "slack-url", stdin=VALUE + "\n")
    assert done.returncode == 0, done.stderr
    # never from argv: a value after the name is a usage error
    assert cli(env, "set", "slack-url", VALUE).returncode == 2
    empty = cli(env, "set", "other")
    assert empty.returncode == 2 and "no value for 'other' on stdin" in empty.stderr
    bad_name = cli(env, "set", "no spaces", stdin="v")
    assert bad_name.returncode == 2 and "NAME: expected letters" in bad_name.stderr
    no_key = cli({k: v for k, v in env.items() if k != "VIGIL_SECRETS_KEY"}, "set", "x", stdin="v")
    assert no_key.returncode == 2 and "VIGIL_SECRETS_KEY is not set" in no_key.stderr

    listed = cli(env, "list", "--format", "json")
    assert [row["name"] for row in json.loads(listed.stdout)] == ["slack-url"]
    assert VALUE not in listed.stdout + done.stdout + done.stderr
    kept = b"".join(read_compacted(settings, kafka, settings.topic(SECRETS_TOPIC)).values())
    assert kept and VALUE.encode() not in kept  # sealed, not stored in the clear

    keyed = load_settings(**{**settings.model_dump(), "secrets_key": key, "secrets": {}})
    opened = with_stored_secrets(keyed, kafka)
    assert opened.secrets["slack-url"].get_secret_value() == VALUE
    # the environment's VIGIL_SECRETS wins over the store
    both = load_settings(**{**keyed.model_dump(), "secrets": {"slack-url": "from-env"}})
    assert with_stored_secrets(both, kafka).secrets["slack-url"].get_secret_value() == "from-env"
    other = load_settings(**{**keyed.model_dump(), "secrets_key": new_key()})
    with pytest.raises(SettingsError, match="is not the key secret 'slack-url' was sealed with"):
        with_stored_secrets(other, kafka)

    gone = cli(env, "delete", "slack-url")
    assert gone.returncode == 0
    assert json.loads(cli(env, "list", "--format", "json").stdout) == []
    assert cli(env, "delete", "slack-url").returncode == 2


def test_a_sealed_value_opens_under_its_own_name_only() -> None:
    key = parse_key(new_key())
    sealed = seal(key, "a", VALUE, 0)
    assert unseal(key, sealed) == VALUE
    moved = type(sealed)("b", sealed.key_id, sealed.nonce, sealed.ciphertext, 0)
    with pytest.raises(SettingsError, match="secret 'b' does not open: it was altered"):
        unseal(key, moved)
    with pytest.raises(SettingsError, match="expected 32 bytes in base64url"):
        parse_key("too-short")

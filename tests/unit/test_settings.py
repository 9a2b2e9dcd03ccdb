import json
from pathlib import Path

import pytest

from vigil.errors import SettingsError
from vigil.settings import load_settings


def test_defaults_use_embedded_components() -> None:
    settings = load_settings()
    assert settings.kafka_bootstrap is None
    assert settings.clickhouse.startswith("chdb://")
    assert settings.clickhouse.endswith("/.vigil/clickhouse")
    assert settings.registry_url == "http://127.0.0.1:8420"
    assert settings.topic("chain.blocks") == "vigil.chain.blocks"


def test_environment_is_read_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("VIGIL_SECRETS", json.dumps({"hook": "s3cret"}))
    monkeypatch.setenv("VIGIL_SCHEMA_REGISTRY_URL", "http://registry:8081/")
    settings = load_settings()
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert settings.secrets["hook"].get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.registry_url == "http://registry:8081"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(Exception, match="frozen"):
        settings.api_bind = "0.0.0.0:1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("VIGIL_API_BIND", "8420", "expected host:port"),
        ("VIGIL_KAFKA_BOOTSTRAP", "localhost", "expected host:port"),
        ("VIGIL_KAFKA_PORT", "70000", "less than or equal to 65535"),
        ("VIGIL_LOG_LEVEL", "LOUD", "should match pattern"),
    ],
)
def test_invalid_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert variable in str(caught.value)
    assert expected in str(caught.value)
    assert repr(value) in str(caught.value)


def test_child_env_round_trips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIGIL_SECRETS", json.dumps({"hook": "s3cret"}))
    settings = load_settings(data_dir=tmp_path, topic_prefix="t1", kafka_bootstrap="h:1")
    for name, value in settings.child_env().items():
        monkeypatch.setenv(name, value)
    again = load_settings()
    assert again.data_dir == tmp_path.resolve()
    assert again.topic_prefix == "t1"
    assert again.kafka_bootstrap == "h:1"
    assert again.secrets["hook"].get_secret_value() == "s3cret"


def test_cluster_ids_never_look_like_options() -> None:
    from vigil.stack.broker import new_cluster_id

    ids = {new_cluster_id() for _ in range(2000)}  # ~31 would start with "-" unfiltered
    assert len(ids) == 2000
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)


@pytest.mark.parametrize("value", ['{"hook": 12345678}', "not-json-s3cret"])
def test_bad_secrets_are_named_but_never_echoed(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("VIGIL_SECRETS", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "VIGIL_SECRETS" in str(caught.value)
    assert "12345678" not in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__

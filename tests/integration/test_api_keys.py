"""API keys on a real broker: made by the CLI, followed by the API, checked on every route."""

import base64
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import API_KEY, AUTH, ApiServer, vigil_cli
from tests.unit.test_config import monitor, project
from vigil.api.app import create_app
from vigil.config.access import SCOPES
from vigil.config.loader import load_project
from vigil.schemas.catalogue import API_KEYS_TOPIC, REGISTRY_TOPIC
from vigil.schemas.codec import Codec
from vigil.settings import Settings
from vigil.streams.api_keys import KeyRing
from vigil.streams.config_topics import apply_project
from vigil.streams.kafka import ensure_topics, read_compacted
from vigil.streams.registry_log import kafka_backed_store
from vigil.testing import wait_for

pytestmark = pytest.mark.integration


def test_keys_are_made_scoped_and_revoked_through_the_cli(
    settings: Settings, kafka: str, clickhouse: Any, tmp_path: Path
) -> None:
    ensure_topics(settings, kafka)
    store = kafka_backed_store(settings, kafka, settings.topic(REGISTRY_TOPIC))
    codec = Codec(store)
    loaded = load_project(
        project(tmp_path, monitor("conditions:\n  events:\n    - signature: Transfer\n"))
    )
    apply_project(settings, kafka, codec, loaded)
    ring = KeyRing(settings, kafka, API_KEY)
    threading.Thread(target=ring.follow, daemon=True).start()
    app = create_app(
        ring,
        store=store,
        clickhouse=clickhouse,
        limits=settings.sql_limits,
        config=(settings, kafka, codec),
    )
    env = {"VIGIL_KAFKA_BOOTSTRAP": kafka, "VIGIL_TOPIC_PREFIX": settings.topic_prefix}
    query = {"query": "SELECT 1 AS one"}
    try:
        with ApiServer(app) as api:
            anonymous = httpx.post(f"{api.url}/sql", json=query)
            assert anonymous.status_code == 401
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            assert "missing API key" in anonymous.json()["detail"]
            forged = "vigil_0123456789ab_" + "x" * 43
            assert (
                httpx.post(f"{api.url}/sql", json=query, headers={"X-Api-Key": forged}).status_code
                == 401
            )
            # /health answers anyone, but tells the instance's details only to a key
            assert set(httpx.get(f"{api.url}/health").json()) == {"status", "version"}

            made = vigil_cli(
                "keys",
                "create",
                "--name",
                "analyst",
                "--scope",
                "sql:read",
                "--format",
                "json",
                env=env,
            )
            assert made.returncode == 0, made.stderr
            created = json.loads(made.stdout)
            key, key_id = created["key"], created["keyId"]
            assert created["scopes"] == ["sql:read"] and key.startswith(f"vigil_{key_id}_")
            bearer = {"Authorization": f"Bearer {key}"}
            wait_for(
                lambda: httpx.post(f"{api.url}/sql", json=query, headers=bearer).status_code == 200,
                10,
                "the API to accept the new key",
            )
            assert httpx.post(f"{api.url}/sql", json=query, headers=bearer).json()["rows"] == [[1]]
            # the wrong scope is 403 naming the scope; the stack key holds them all
            denied = httpx.get(f"{api.url}/monitors", headers=bearer)
            assert denied.status_code == 403
            assert denied.json()["detail"] == f"the key {key_id} lacks the scope monitors:read"
            [applied] = httpx.get(f"{api.url}/monitors", headers=AUTH).json()
            assert applied["id"] == "monitor" and applied["paused"] is False
            paused = httpx.post(f"{api.url}/monitors/monitor/pause", headers=AUTH).json()
            assert paused == {"id": "monitor", "paused": True, "changed": True}
            again = httpx.post(f"{api.url}/monitors/monitor/pause", headers=AUTH).json()
            assert again["changed"] is False
            assert httpx.get(f"{api.url}/monitors", headers=AUTH).json()[0]["paused"] is True
            unknown = httpx.post(f"{api.url}/monitors/nope/resume", headers=AUTH)
            assert unknown.status_code == 404 and "applied: monitor" in unknown.json()["detail"]
            # schema registry clients send the key as Basic auth's password
            basic = base64.b64encode(f"vigil:{API_KEY}".encode()).decode()
            subjects = httpx.get(f"{api.url}/subjects", headers={"Authorization": f"Basic {basic}"})
            assert subjects.status_code == 200

            listed = vigil_cli("keys", "list", "--format", "json", env=env)
            assert listed.returncode == 0, listed.stderr
            assert [(k["key_id"], k["scopes"]) for k in json.loads(listed.stdout)] == [
                (key_id, "sql:read")
            ]
            kept = b"".join(
                read_compacted(settings, kafka, settings.topic(API_KEYS_TOPIC)).values()
            )
            # the secret may itself begin with "_" (it is url-safe base64), so cut by length
            secret = key.removeprefix(f"vigil_{key_id}_")
            assert len(secret) == 43
            assert key.encode() not in kept and secret.encode() not in kept  # a hash only

            revoked = vigil_cli("keys", "revoke", key_id, env=env)
            assert revoked.returncode == 0 and "revoked" in revoked.stdout
            wait_for(
                lambda: httpx.post(f"{api.url}/sql", json=query, headers=bearer).status_code == 401,
                10,
                "the API to refuse the revoked key",
            )
            assert json.loads(vigil_cli("keys", "list", "--format", "json", env=env).stdout) == []
    finally:
        ring.stopping.set()


def test_key_mistakes_are_one_line_and_exit_2(settings: Settings, kafka: str) -> None:
    ensure_topics(settings, kafka)
    env = {"VIGIL_KAFKA_BOOTSTRAP": kafka, "VIGIL_TOPIC_PREFIX": settings.topic_prefix}
    typo = vigil_cli("keys", "create", "--name", "a", "--scope", "sql:raed", env=env)
    assert typo.returncode == 2
    assert typo.stderr.strip().splitlines() == [
        "error: --scope: unknown scope 'sql:raed'; did you mean sql:read? known: "
        f"{', '.join(SCOPES)} or '*'"
    ]
    unknown = vigil_cli("keys", "revoke", "0123456789ab", env=env)
    assert unknown.returncode == 2 and "no API key '0123456789ab'" in unknown.stderr
    assert "Traceback" not in typo.stderr + unknown.stderr

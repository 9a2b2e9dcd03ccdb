"""The API fuzzed from its own OpenAPI document (schemathesis): whatever a client sends, no
route answers 5xx, and every 4xx body says what was wrong (the field, the key, the scope)."""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr

from tests.helpers import API_KEY, AUTH
from vigil.api.app import create_app
from vigil.api.auth import StaticKeys
from vigil.connectors.history.ddl import migrate
from vigil.connectors.tasks.secrets import new_key
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings
from vigil.streams.forta.ingress import LocalModeIngress
from vigil.streams.kafka import ensure_topics
from vigil.streams.relayers import Relay

pytestmark = pytest.mark.integration


def api_schema(settings: Settings, kafka: str, clickhouse: Any) -> Any:
    ensure_topics(settings, kafka)
    migrate(clickhouse)
    # the secrets routes seal with the operator's key (without one they answer 503)
    settings = settings.model_copy(update={"secrets_key": SecretStr(new_key())})
    store = SchemaStore()  # in memory: fuzzed schemas stay out of the broker
    forta = LocalModeIngress(frozenset(), "forta-token", lambda alerts, metrics: None)
    # relayers on no network: every relayer route answers, and none may send
    relay = Relay(settings, kafka, Codec(store), {})
    app = create_app(
        StaticKeys(API_KEY),
        store=store,
        clickhouse=clickhouse,
        forta=forta,
        limits=settings.sql_limits,
        config=(settings, kafka, Codec(store)),
        relay=relay,
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def explained(body: Any) -> bool:
    """A 4xx body that says what was wrong: a message, or errors each naming their field."""
    if not isinstance(body, dict):
        return False
    detail = body.get("detail", body.get("message", body.get("reason")))
    if isinstance(detail, str):
        return bool(detail.strip())
    if isinstance(detail, list):
        return bool(detail) and all(isinstance(e, dict) and e.get("loc") for e in detail)
    return False


def test_no_route_answers_5xx_and_every_4xx_says_why(
    settings: Settings, kafka: str, clickhouse: Any
) -> None:
    # schemathesis' pytest plugin does not run on pytest 9 yet: one Hypothesis run per
    # operation, driven here
    operations = [
        found.ok() for found in api_schema(settings, kafka, clickhouse).get_all_operations()
    ]
    assert len(operations) >= 15, [op.label for op in operations]
    seen: set[int] = set()
    for operation in operations:

        @given(operation.as_strategy())
        @hypothesis_settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            for headers in (AUTH, {}):
                response = case.call(headers=headers)
                seen.add(response.status_code)
                where = f"{case.method} {case.formatted_path}"
                assert response.status_code < 500, f"{where}: {response.text}"
                if 400 <= response.status_code < 500:
                    assert explained(response.json()), f"{where}: {response.text}"

        fuzz()
    # it reached the routes' own answers, not just the key check
    assert {200, 401, 404, 422} <= seen, sorted(seen)

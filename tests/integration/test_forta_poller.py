"""The Forta API poller against a local GraphQL server serving a recorded response in pages."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers import FIXTURES, load_json, read_topic
from vigil.config.models import FortaApiConfig
from vigil.schemas.codec import Codec
from vigil.schemas.forta import created_ms
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings, load_settings
from vigil.streams.forta.poller import FortaPoller
from vigil.streams.kafka import BatchProducer, ensure_topics

pytestmark = pytest.mark.integration
BOT = "0x49daccfa0f8f7b1e8b7a15e7ba4e2e3fb9fe0e7c4ca0f2d1b31ccc2f08a0e9fb"


class GraphQL:
    """Serves the recorded alerts in pages of 3, checking what a Forta client must send."""

    def __init__(self) -> None:
        self.alerts = load_json(FIXTURES / "forta" / "graphql-alerts-response.json")["data"][
            "alerts"
        ]["alerts"]
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"headers": dict(self.headers), "body": body})
                if outer.fail_next:
                    outer.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                start = 3 if body["variables"]["input"].get("after") else 0
                page = outer.alerts[start : start + 3]
                more = start + 3 < len(outer.alerts)
                cursor = {"alertId": page[-1]["hash"], "blockNumber": 17890041}
                answer = {
                    "data": {
                        "alerts": {
                            "pageInfo": {"hasNextPage": more, "endCursor": cursor},
                            "alerts": page,
                        }
                    }
                }
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/graphql"


@pytest.fixture
def graphql() -> Iterator[GraphQL]:
    server = GraphQL()
    yield server
    server.server.shutdown()


def poller(settings: Settings, kafka: str, url: str, codec: Codec) -> FortaPoller:
    config = FortaApiConfig(
        name="main", url=url, api_key_secret="forta", bot_ids=[BOT], chain_id=1, page_size=3
    )
    with_key = load_settings(**{**settings.model_dump(), "secrets": {"forta": "KEY"}})
    return FortaPoller(with_key, config, BatchProducer(with_key, kafka), codec, kafka)


def test_alerts_are_emitted_once_across_pages_and_restarts(
    settings: Settings, kafka: str, graphql: GraphQL
) -> None:
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    first = poller(settings, kafka, graphql.url, codec)
    first.load_checkpoint()
    assert first.poll_once() == 5
    assert len(graphql.requests) == 2  # two pages, the second after the first's end cursor
    one, two = (r["body"]["variables"]["input"] for r in graphql.requests)
    assert "after" not in one and two["after"]["alertId"] == graphql.alerts[2]["hash"]
    assert one["first"] == 3 and one["bots"] == [BOT] and one["chainId"] == 1
    assert one["createdSince"] == 3600 * 1000
    assert graphql.requests[0]["headers"]["Authorization"] == "Bearer KEY"
    assert "alerts(input: $input)" in graphql.requests[0]["body"]["query"]
    assert first.poll_once() == 0  # the same alerts again: nothing new

    again = poller(settings, kafka, graphql.url, codec)  # a restart
    again.load_checkpoint()
    newest = max(created_ms(a["createdAt"]) for a in graphql.alerts)
    assert again.newest_ms == newest
    assert again.poll_once() == 0
    recorded = read_topic(settings, codec, kafka, "forta.alerts", "FortaAlert")
    assert sorted(r["hash"] for r in recorded) == sorted(a["hash"] for a in graphql.alerts)
    assert {r["origin"] for r in recorded} == {"api"}


def test_errors_back_off_and_the_poll_goes_on(
    settings: Settings, kafka: str, graphql: GraphQL
) -> None:
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    graphql.fail_next = 1
    source = poller(settings, kafka, graphql.url, codec)
    thread = threading.Thread(target=source.run, daemon=True)
    thread.start()
    from vigil.testing import wait_for

    wait_for(lambda: source.emitted == 5, 30, "the alerts after a 503")
    source.stopping.set()
    thread.join(10)


def test_created_at_parses_forta_nanosecond_timestamps() -> None:
    assert created_ms("2023-08-11T07:06:57.888797394Z") == 1691737617888
    assert created_ms("2023-08-11T07:06:57Z") == 1691737617000
    assert created_ms("2023-08-11T09:06:57.5+02:00") == 1691737617500
    assert created_ms("") == 0

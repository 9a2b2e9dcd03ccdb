"""Sink route tokens: signed over the task and its constraints, verified without storage."""

from vigil.config.sink_routes import SinkRoute, verified


def test_a_token_names_its_route_only_under_its_secret() -> None:
    route = SinkRoute("sink", "PUT", "application/json", "in/here")
    token = route.token("s3cret")
    assert verified(token, "s3cret") == route
    assert verified(token, "rotated") is None  # a new server secret invalidates it
    body, signature = token.split(".")
    wider = SinkRoute("sink", "POST", None, "in/here").token("s3cret").split(".")[0]
    assert verified(f"{wider}.{signature}", "s3cret") is None  # constraints are signed
    assert verified("garbage", "s3cret") is None and verified(f"{body}.", "s3cret") is None
    assert route.path("s3cret") == f"/routes/{token}/in/here"

"""The metrics vigil exports: Prometheus names, and a Grafana dashboard that queries only them."""

import json
import re

from prometheus_client import REGISTRY

from vigil import metrics
from vigil.settings import REPO_ROOT

SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def exported() -> set[str]:
    """Every series name vigil's metrics can expose, from the registry's own families."""
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("vigil_"):
            names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def test_names_follow_prometheus_conventions() -> None:
    names = exported()
    assert "vigil_matches_total" in names and "vigil_rpc_request_seconds_bucket" in names
    for family in REGISTRY.collect():
        if family.name.startswith("vigil_"):
            assert re.fullmatch(r"vigil_[a-z_]+", family.name)
            assert family.type != "counter" or not family.name.endswith("_total")  # added once
            assert family.documentation, family.name


def test_the_dashboard_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads(
        (REPO_ROOT / "examples" / "grafana" / "vigil-dashboard.json").read_text()
    )
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bvigil_[a-z_]+", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= exported(), f"not exported: {sorted(queried - exported())}"
    # and it shows every family vigil exports
    families = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in exported()}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in queried}
    assert families == shown, f"not on the dashboard: {sorted(families - shown)}"


def test_an_endpoint_label_is_its_host_only() -> None:
    assert metrics.endpoint("https://user:pw@eth.example.com:8443/v3/SECRETKEY?x=1") == (
        "eth.example.com:8443"
    )

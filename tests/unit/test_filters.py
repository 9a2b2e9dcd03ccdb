"""Custom filters' rules: requests of at most 25 matches, and what an answer keeps."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES
from tests.unit.test_config import monitor, project
from vigil.config.loader import load_project
from vigil.config.state import desired
from vigil.errors import ConfigError
from vigil.processors.filters import FilterAnswerError, kept, request_body, requests


def matches(count: int) -> list[Any]:
    match = json.loads((FIXTURES / "avro" / "Match.json").read_text())
    return [{**match, "hash": f"0x{n:064x}"} for n in range(count)]


def test_sixty_matches_make_three_requests_in_order() -> None:
    groups = requests(matches(60))
    assert [len(g) for g in groups] == [25, 25, 10]
    assert groups[2][-1]["hash"] == f"0x{59:064x}"
    body = request_body(groups[0])
    assert len(body["events"]) == 25 and body["events"][0]["hash"] == f"0x{0:064x}"


def test_an_answer_keeps_its_hashes_with_their_metadata() -> None:
    found = matches(3)
    answer = {
        "matches": [
            {"hash": found[2]["hash"].upper().replace("0X", "0x"), "metadata": {"a": 1}},
            {"hash": found[0]["hash"]},
            {"hash": "0xnot-in-the-request"},
        ]
    }
    chosen = kept(found, answer)
    assert [m["hash"] for m in chosen] == [found[0]["hash"], found[2]["hash"]]
    assert [m["metadata"] for m in chosen] == [None, '{"a": 1}']
    assert kept(found, {}) == [] and kept(found, None) == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ([], "expected {"),
        ({"matches": "all"}, "expected {"),
        ({"matches": [{"hash": 1}]}, "matches[0]: expected an object with a hash string"),
        ({"matches": [{"hash": "0x1", "metadata": [1]}]}, "matches[0].metadata"),
    ],
)
def test_an_answer_of_another_shape_is_an_error(answer: Any, expected: str) -> None:
    with pytest.raises(FilterAnswerError, match=expected.replace("[", r"\[").replace("{", r"\{")):
        kept(matches(1), answer)


def test_a_filter_is_a_task_or_a_file_beside_the_monitor(tmp_path: Path) -> None:
    root = project(tmp_path, monitor("channels: [ops]\nfilter: ./keep.py\n"))
    with pytest.raises(ConfigError, match=r"keep\.py: monitor .m.: filter: no such file"):
        load_project(root)
    (root / "monitors" / "keep.py").write_text("def handler(event):\n    return {}\n")
    [loaded] = load_project(root).monitors
    assert loaded.filter_files == {"main.py": b"def handler(event):\n    return {}\n"}
    spec = desired(load_project(root))[("monitor", loaded.id)].spec
    assert spec is not None and set(spec["filterFiles"]) == {"main.py"}
    (root / "monitors" / "m.yaml").write_text(monitor("channels: [ops]\nfilter: keeper\n"))
    with pytest.raises(ConfigError, match="filter: unknown task 'keeper'; tasks: none"):
        load_project(root)


def test_a_forta_match_goes_to_its_filter_with_the_alert() -> None:
    alert = json.loads((FIXTURES / "avro" / "FortaAlert.json").read_text())
    [match] = matches(1)
    forta = {**match, "transaction": None, "alert": alert, "hash": alert["hash"]}
    [event] = request_body([forta])["events"]
    assert event["type"] == "FORTA" and event["alert"]["hash"] == alert["hash"]
    chosen = kept([forta], {"matches": [{"hash": alert["hash"], "metadata": {"bot": "ok"}}]})
    assert [m["metadata"] for m in chosen] == ['{"bot": "ok"}']

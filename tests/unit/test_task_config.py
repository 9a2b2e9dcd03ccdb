"""Tasks in the project: tasks/<id>.yaml names its code, limits and failure channels."""

from pathlib import Path

import pytest

from tests.unit.test_config import monitor, project
from vigil.config.loader import load_project
from vigil.config.state import desired
from vigil.errors import ConfigError

HANDLER = "def handler(event, context):\n    return 1\n"


def with_task(tmp_path: Path, definition: str, code: str | None = HANDLER) -> Path:
    root = project(tmp_path, monitor("channels: [ops]\n"))
    (root / "tasks").mkdir()
    (root / "tasks" / "count.yaml").write_text(definition)
    if code is not None:
        (root / "tasks" / "count.py").write_text(code)
    return root


def test_a_task_is_loaded_with_its_code_and_becomes_a_change(tmp_path: Path) -> None:
    root = with_task(tmp_path, "name: counter\ncode: count.py\nfailure_channels: [ops]\n")
    [task] = load_project(root).tasks
    assert (task.id, task.config.timeout, task.config.memory_mb) == ("count", 300.0, 256)
    assert task.files == {"main.py": HANDLER.encode()}
    change = desired(load_project(root))[("task", "count")]
    (root / "tasks" / "count.py").write_text(HANDLER.replace("1", "2"))
    changed = desired(load_project(root))[("task", "count")]
    assert change.version != changed.version  # the code is part of the version


@pytest.mark.parametrize(
    ("definition", "code", "expected"),
    [
        (
            "name: c\ncode: count.py\nfailure_channels: [pager]\n",
            HANDLER,
            "count.yaml: task 'c': failure_channels: unknown channel alias 'pager'; "
            "channels/ defines: ops",
        ),
        ("name: c\ncode: gone.py\n", HANDLER, "gone.py: task 'c': code: no such file or folder"),
        ("name: c\ncode: count.py\ntimeout: 2000\n", HANDLER, "timeout"),
        ("name: c\ncod: count.py\n", HANDLER, "cod"),
    ],
)
def test_task_mistakes_name_the_file_and_field(
    tmp_path: Path, definition: str, code: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_project(with_task(tmp_path, definition, code))
    assert expected in str(caught.value)


def test_a_monitor_triggers_tasks_named_in_tasks_or_among_its_channels(tmp_path: Path) -> None:
    root = project(tmp_path, monitor("channels: [ops, count]\ntasks: [count]\n"))
    (root / "tasks").mkdir()
    (root / "tasks" / "count.yaml").write_text("name: counter\ncode: count.py\n")
    (root / "tasks" / "count.py").write_text(HANDLER)
    [loaded] = load_project(root).monitors
    assert (loaded.config.channels, loaded.config.tasks) == (["ops", "count"], ["count"])


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("tasks: [counter]\n", "tasks: unknown task 'counter'; tasks: none"),
        ("channels: [count]\n", "channels: unknown channel alias 'count'; channels/ defines: ops"),
    ],
)
def test_a_monitor_naming_a_task_that_is_not_there_fails_at_load(
    tmp_path: Path, extra: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_project(project(tmp_path, monitor(extra)))
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        ("web3==7.0\n--index-url https://example.org\n", "requirements.txt:2: pip options"),
        ("# pinned\nrequests >= 2 ; python_version < '2'\nnot a requirement!\n", ":3: not a"),
    ],
)
def test_a_tasks_requirements_are_checked_at_load(
    tmp_path: Path, requirements: str, expected: str
) -> None:
    root = with_task(tmp_path, "name: c\ncode: count\n", code=None)
    folder = root / "tasks" / "count"
    folder.mkdir()
    (folder / "main.py").write_text(HANDLER)
    (folder / "requirements.txt").write_text(requirements)
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    assert expected in str(caught.value)
    (folder / "requirements.txt").write_text("web3==7.0 --hash=sha256:00ff\nrequests>=2\n")
    [task] = load_project(root).tasks
    assert set(task.files) == {"main.py", "requirements.txt"}

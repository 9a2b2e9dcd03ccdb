"""The CLI reads the history of its own instance: an API that answers for another data dir
is refused, and an empty data dir is told whose history it got."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ApiServer, api_app
from vigil.stack.instance import instance_id

pytestmark = pytest.mark.integration


def sql(api: ApiServer, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil", "sql", "--format", "json", "SELECT 1 AS one"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            **api.env,
            "VIGIL_DATA_DIR": str(data_dir),
        },
    )


def test_the_cli_refuses_another_instances_api(clickhouse: Any, tmp_path: Path) -> None:
    theirs = instance_id(tmp_path / "theirs", create=True)
    status = {"instance": theirs, "dataDir": str(tmp_path / "theirs")}
    mine = tmp_path / "mine"
    assert instance_id(mine, create=True) != theirs
    assert instance_id(mine) == instance_id(mine, create=True)  # made once, then kept
    with ApiServer(api_app(clickhouse=clickhouse, status=status)) as api:
        refused = sql(api, mine)
        empty = sql(api, tmp_path / "empty")
        same = sql(api, tmp_path / "theirs")
    assert refused.returncode == 2 and refused.stdout == ""
    assert f"is instance {theirs}, not the instance {instance_id(mine)}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert empty.returncode == 0 and json.loads(empty.stdout) == [{"one": 1}]
    assert f"holds no vigil instance; this is the history of instance {theirs}" in empty.stderr
    assert same.returncode == 0 and same.stderr == ""

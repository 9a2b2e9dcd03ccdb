"""`vigil validate`: every failing file at once, missing secrets named, --strict, --format json."""

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.test_config import monitor, project


def validate(*args: str, secrets: str = "{}") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil", "validate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "400", "VIGIL_SECRETS": secrets},
    )


def broken_project(tmp_path: Path) -> Path:
    root = project(tmp_path, monitor("severity: hgh\n"))
    (root / "monitors" / "second.yaml").write_text(
        monitor("conditions:\n  transaction: gasPrice >\n")
    )
    (root / "channels" / "pager.yaml").write_text("alias: pager\ntype: pagerduty\nrouting_key: x\n")
    return root


def test_every_failing_file_is_reported_once_with_exit_2(tmp_path: Path) -> None:
    root = broken_project(tmp_path)
    result = validate(str(root))
    assert result.returncode == 2 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, result.stderr
    assert any("monitor.yaml: monitor 'm': severity: expected one of" in e for e in errors)
    assert any(
        "second.yaml: monitor 'm': conditions.transaction: syntax error" in e for e in errors
    )
    assert any("pager.yaml: channel 'pager': unknown field 'routing_key'" in e for e in errors)
    assert "3 error(s) in" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_secret_is_a_warning_naming_channel_and_field_or_an_error_with_strict(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, monitor())
    relaxed = validate(str(root))
    assert relaxed.returncode == 0 and relaxed.stdout.startswith("ok: 1 networks, 1 monitors")
    assert "warning: " in relaxed.stderr
    assert "ops.yaml: channel 'ops': secret: secret 'ops' is not set" in relaxed.stderr
    strict = validate(str(root), "--strict")
    assert strict.returncode == 2
    assert "error: " in strict.stderr and "secret 'ops' is not set" in strict.stderr
    provided = validate(str(root), "--strict", secrets='{"ops": "k"}')
    assert provided.returncode == 0 and provided.stderr == ""


def test_json_output_holds_errors_warnings_and_counts(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bad = json.loads(validate(str(broken_project(tmp_path / "a")), "--format", "json").stdout)
    assert bad["ok"] is False and len(bad["errors"]) == 3
    good = json.loads(validate(str(project(tmp_path / "b", monitor())), "--format", "json").stdout)
    assert good["ok"] is True and good["monitors"] == 1 and good["errors"] == []
    assert any("secret 'ops' is not set" in w for w in good["warnings"])


def test_an_rpc_url_reference_that_is_not_set_is_named(tmp_path: Path) -> None:
    keyed = "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['https://rpc.example/v2/${RPC_KEY}']\n"
    root = project(tmp_path, monitor(), vigil_yaml=keyed)
    result = validate(str(root), "--strict", secrets='{"ops": "k"}')
    assert result.returncode == 2
    assert (
        "network 'mainnet': rpc_urls[0]: https://rpc.example/… refers to ${RPC_KEY}"
        in result.stderr
    )
    assert validate(str(root), "--strict", secrets='{"ops": "k", "RPC_KEY": "x"}').returncode == 0

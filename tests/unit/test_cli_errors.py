"""A user's mistake on the command line: one line naming it, exit status 2, no traceback."""

import subprocess
from pathlib import Path

import pytest

from tests.helpers import vigil_cli
from vigil import __version__


def vigil(*args: str) -> subprocess.CompletedProcess[str]:
    return vigil_cli(*args, env={"COLUMNS": "60"})  # narrow: the line must not wrap


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["monitrs"],
            "error: No such command 'monitrs'. Did you mean 'monitors'? (see `vigil --help`)",
        ),
        (["--bogus"], "error: No such option: --bogus (see `vigil --help`)"),
        (["sql"], "error: give either a SELECT or --query NAME (`vigil sql --queries` lists them)"),
        (
            ["backfill", "--network", "anvil", "--reorg", "0"],
            "error: Invalid value for '--reorg': Input should be greater than or equal to 1 "
            "(see `vigil backfill --help`)",
        ),
        (
            ["monitors", "test"],
            "error: Missing argument 'monitor_file'. (see `vigil monitors test --help`)",
        ),
        (
            ["monitors", "test", "token-transfers", "--tx", "0x" + "ab" * 32],
            "error: --block and --tx need --network NAME",
        ),
        (
            [
                "monitors",
                "test",
                "token-transfers",
                "--network",
                "mainnet",
                "--block",
                "1",
                "--tx",
                "0x" + "ab" * 32,
            ],
            "error: with --network, give one of --block N, --blocks A..B or --tx HASH",
        ),
        (
            ["monitors", "test", "token-transfers", "--network", "mainnet", "--tx", "0xab"],
            "error: --tx: expected a 0x-prefixed 64-hex-digit hash, got '0xab'",
        ),
        (
            ["monitors", "test", "nope"],
            "error: 'nope' is neither a monitor file nor a monitor of examples; it has: "
            "forta-phishing, ownership, token-calls, token-transfers",
        ),
        (
            ["replay", "--monitor", "token-transfers"],
            "error: give either --blocks A..B or --since TIME --until TIME",
        ),
        (
            ["replay", "--monitor", "token-transfers", "--blocks", "9..1"],
            "error: --blocks: expected A..B with A <= B, got '9..1'",
        ),
        (
            ["replay", "--monitor", "token-transfers", "--blocks", "1-9"],
            "error: --blocks: expected A..B such as 18000000..18000100, got '1-9'",
        ),
        (
            ["replay", "--monitor", "token-transfers", "--since", "2026-11-30T00:00:00Z"],
            "error: --since and --until go together: give both",
        ),
        (
            ["replay", "--monitor", "forta-phishing", "--blocks", "1..2"],
            "error: --monitor: forta-phishing watches Forta alerts; replays run blocks through "
            "chain monitors (`vigil monitors test --alerts` tests a Forta monitor)",
        ),
        (
            ["replay", "--monitor", "nope", "--blocks", "1..2"],
            "error: --monitor: no monitor 'nope' in examples; it has: forta-phishing, "
            "ownership, token-calls, token-transfers",
        ),
        (
            ["replay", "--monitor", "token-transfers", "--blocks", "1..2", "--source", "s3"],
            "error: --source: expected one of history, kafka, rpc, got 's3'",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    done = vigil(*args)
    assert (done.returncode, done.stderr.strip(), done.stdout) == (2, expected, "")


def test_version() -> None:
    done = vigil("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"vigil {__version__}")


def test_sql_on_a_data_dir_with_no_history_says_so(tmp_path: Path) -> None:
    env = {"VIGIL_DATA_DIR": str(tmp_path), "VIGIL_API_BIND": "127.0.0.1:9"}
    for args in (["sql", "SELECT 1 FROM deliveries"], ["queries", "run", "failed-deliveries"]):
        done = vigil_cli(*args, env=env)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.strip().splitlines() == [
            f"error: no history at chdb://{tmp_path}/clickhouse (database vigil) yet: is "
            f"VIGIL_DATA_DIR ({tmp_path}) the data dir of a vigil that has run? `vigil up` "
            "makes the tables"
        ]

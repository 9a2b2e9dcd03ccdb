"""What the CLI prints into pipes and files: whole values, and JSON wherever a listing is."""

import json
import subprocess

from tests.helpers import MAINNET, vigil_cli
from vigil.settings import REPO_ROOT


def vigil(*args: str) -> subprocess.CompletedProcess[str]:
    return vigil_cli(*args, env={"VIGIL_PROJECT_DIR": str(REPO_ROOT / "examples")})


def test_a_table_into_a_pipe_keeps_whole_hashes() -> None:
    done = vigil(
        "monitors", "test", str(REPO_ROOT / "examples" / "mainnet" / "usdt.yaml"),
        "--blocks", str(MAINNET / "18000000.block.json"),
        "--receipts", str(MAINNET / "18000000.receipts.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    full = "0xc1e64199d60a6420e360ba326f4026eb61a085481baaec99f2f49224f1b1e96a"
    assert full in done.stdout and "…" not in done.stdout
    assert "2 match(es)" in done.stdout


def test_listings_print_json_and_csv() -> None:
    topics = json.loads(vigil("topics", "--format", "json").stdout)
    assert {
        "topic": "vigil.chain.blocks",
        "key": "network (network:number for a network with spread: true)",
        "schema": "vigil.Block",
    }.items() <= (topics[0].items())
    templates = json.loads(vigil("monitors", "templates", "--format", "json").stdout)
    assert {t["template"] for t in templates} >= {"role-changes", "large-erc20-transfer"}
    csv_lines = vigil("topics", "--format", "csv").stdout.splitlines()
    assert csv_lines[0] == "topic,key,schema,subject,partitions,order,kept,writer,what"
    bad = vigil("monitors", "templates", "--format", "yaml")
    assert bad.returncode == 2 and "--format: expected table, json, csv; got 'yaml'" in bad.stderr

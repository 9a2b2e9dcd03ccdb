"""The README's commands are real: every `vigil …` it shows is a command that exists, and
the ones that need no running stack run as written and succeed."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

from vigil.settings import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
# commands that need no broker, node or API: run in README order, each where it is meant
OFFLINE = (
    "vigil monitors test examples/",
    "vigil monitors new ",
    "vigil monitors save-template ",
    "vigil tasks run examples/",
)
MAINNET_PROJECT = "networks:\n  mainnet:\n    chain_id: 1\n    rpc_urls: ['https://rpc.example']\n"


def commands() -> list[list[str]]:
    found = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.split(" # ")[0], comments=False)
                while words and "=" in words[0]:  # VAR=value prefixes
                    words.pop(0)
                if words and words[0].endswith("vigil"):
                    found.append(["vigil", *words[1:]])
    return found


def run(args: list[str], cwd: Path, project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil", *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "VIGIL_PROJECT_DIR": str(project)},
    )


def test_every_command_the_readme_shows_exists() -> None:
    shown = commands()
    assert len(shown) > 15
    for args in shown:
        path = [w for w in args[1:3] if not w.startswith("-") and re.fullmatch(r"[a-z-]+", w)]
        done = run([*args[:1], *path, "--help"], REPO_ROOT, REPO_ROOT / "examples")
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"


def test_the_offline_commands_run_as_written(tmp_path: Path) -> None:
    (tmp_path / "vigil.yaml").write_text(MAINNET_PROJECT)
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "ops.yaml").write_text("alias: ops\ntype: webhook\nurl: http://x/\n")
    ran = 0
    for args in commands():
        if not " ".join(args).startswith(OFFLINE) or (args[2] == "test" and "--blocks" not in args):
            continue  # the rest need a broker, a node or the API
        in_repo = args[2] == "test" or args[1] == "tasks"
        done = run(args, REPO_ROOT if in_repo else tmp_path, tmp_path)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
        ran += 1
    assert ran == 4
    assert (tmp_path / "templates" / "my-check.yaml").exists()

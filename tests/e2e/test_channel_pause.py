"""A paused channel through the running stack: the monitor's match is suppressed with the
reason, nothing is sent, and once resumed the next match is sent again."""

import json

import pytest

from tests.e2e.stack import LARGE, Running
from tests.helpers import run_vigil
from vigil.testing import wait_for

pytestmark = pytest.mark.e2e


def _posted_blocks(running: Running) -> list[int]:
    return [
        int(event["blockNumber"], 16)
        for post in running.receiver.received
        for event in post.json()["events"]
    ]


def test_a_paused_channel_sends_nothing_and_says_why(running: Running) -> None:
    settings = running.stack.settings
    listed = run_vigil(settings, "channels", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert [(c["alias"], c["type"], c["paused"]) for c in json.loads(listed.stdout)] == [
        ("hook", "webhook", False)
    ]
    paused = run_vigil(settings, "channels", "pause", "hook")
    assert paused.returncode == 0 and "channel alias hook paused" in paused.stdout, paused.stderr
    again = run_vigil(settings, "channels", "pause", "hook")
    assert "already paused" in again.stdout
    unknown = run_vigil(settings, "channels", "pause", "nope")
    assert unknown.returncode == 2 and "no applied channel alias 'nope'" in unknown.stderr
    log = running.stack.logs / "worker.log"
    wait_for(lambda: "config: channel hook paused" in log.read_text() or None, 30, "the pause")

    quiet = running.mine_transfers(LARGE)
    rows = wait_for(
        lambda: (
            running.stack.check()
            or running.sql("SELECT reason, detail, block_number FROM suppressed FINAL")
            or None
        ),
        60,
        "the suppressed match",
    )
    assert rows == [["channel", "channel hook (hook) is paused", quiet]]
    assert quiet not in _posted_blocks(running)

    resumed = run_vigil(settings, "channels", "resume", "hook")
    assert resumed.returncode == 0 and "resumed" in resumed.stdout
    wait_for(lambda: "config: channel hook set" in log.read_text() or None, 30, "the resume")
    told = running.mine_transfers(LARGE)
    wait_for(
        lambda: running.stack.check() or told in _posted_blocks(running) or None, 60, "the POST"
    )
    assert quiet not in _posted_blocks(running)  # what was suppressed stays untold
    # a pause by hand outlives an apply of the unchanged file
    run_vigil(settings, "channels", "pause", "hook")
    applied = run_vigil(settings, "apply")
    assert applied.returncode == 0 and "nothing to change" in applied.stdout, applied.stdout

"""Helpers for tests of your own monitors and of vigil: a recording webhook receiver, a
clock you set by hand, Forta scan-node tokens, polling with a deadline, and the replay of a
monitor over recorded blocks (the code `vigil monitors test` runs)."""

from vigil.processors.replay import load_blocks, run_monitor
from vigil.testing.clock import ManualClock
from vigil.testing.forta import scan_node_jwt, sign_eth_jwt
from vigil.testing.receiver import Received, WebhookReceiver
from vigil.testing.waiting import wait_for

__all__ = [
    "ManualClock",
    "Received",
    "WebhookReceiver",
    "load_blocks",
    "run_monitor",
    "scan_node_jwt",
    "sign_eth_jwt",
    "wait_for",
]

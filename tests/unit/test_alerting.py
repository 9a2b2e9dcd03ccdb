"""Alert threshold and timeout: the semantics of the source documents, on an injected clock."""

from typing import Any

from vigil.processors.alerting import Gate, decide


def run(gate: Gate, times: list[int]) -> list[tuple[bool, str | None]]:
    state: dict[str, Any] | None = None
    out = []
    for i, at in enumerate(times):
        state, decision = decide(state, gate, f"m{i}", at)
        out.append((decision.notify, decision.reason))
    return out


def test_five_within_an_hour_notifies_from_the_fifth_while_the_window_holds_five() -> None:
    gate = Gate(amount=5, window_seconds=3600)
    times = [0, 100, 200, 300, 400, 500, 4000, 4150]
    assert run(gate, times) == [
        (False, "threshold"),
        (False, "threshold"),
        (False, "threshold"),
        (False, "threshold"),
        (True, None),  # the 5th within the hour
        (True, None),  # 6 in the window
        (False, "threshold"),  # (400, 4000] holds 500 and this one: below 5 again
        (False, "threshold"),
    ]


def test_threshold_window_slides_per_match() -> None:
    gate = Gate(amount=3, window_seconds=10)
    assert run(gate, [0, 1, 2, 3, 20, 21, 22]) == [
        (False, "threshold"),
        (False, "threshold"),
        (True, None),
        (True, None),
        (False, "threshold"),  # the window (10, 20] is empty but for this one
        (False, "threshold"),
        (True, None),
    ]


def test_timeout_lets_one_notification_through_per_period() -> None:
    assert run(Gate(timeout_seconds=60), [0, 10, 59, 60, 100, 125]) == [
        (True, None),
        (False, "timeout"),
        (False, "timeout"),
        (True, None),
        (False, "timeout"),
        (True, None),
    ]


def test_threshold_and_timeout_together() -> None:
    gate = Gate(amount=2, window_seconds=100, timeout_seconds=50)
    assert run(gate, [0, 10, 20, 70]) == [
        (False, "threshold"),
        (True, None),
        (False, "timeout"),
        (True, None),
    ]


def test_a_repeated_match_gets_its_first_decision_and_counts_once() -> None:
    gate = Gate(amount=2, window_seconds=100)
    state, first = decide(None, gate, "a", 0)
    state, again = decide(state, gate, "a", 0)
    assert (first.notify, again.notify, again.detail) == (False, False, "repeat")
    state, second = decide(state, gate, "b", 1)
    assert second.notify and second.count == 2
    _, repeat = decide(state, gate, "b", 1)
    assert repeat.notify


def test_the_open_gate_and_state_stays_bounded() -> None:
    assert Gate().open and not Gate(amount=2, window_seconds=1).open
    state: dict[str, Any] | None = None
    gate = Gate(amount=2, window_seconds=10)
    for i in range(5000):
        state, _ = decide(state, gate, f"m{i}", i * 5)
    assert state is not None and len(state["seen"]) <= 3600 // 5 + 1

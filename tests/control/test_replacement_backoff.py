"""Crash-loop back-off of an endpoint's replacements (`ReplacementBackoff`), on a clock the test moves:
the count grows while replacements die young, and starts again once the latest one has served
`STABLE_SECONDS`, whatever fails after that."""

from __future__ import annotations

from forklift.control.inference.backoff import STABLE_SECONDS, ReplacementBackoff


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def crash_loop(backoff: ReplacementBackoff, clock: Clock, rounds: int) -> None:
    for i in range(rounds):
        clock.now += backoff.wait("V")
        backoff.started([(f"young-{clock.now}-{i}", "V")])
        clock.now += 10
        backoff.lost(f"young-{clock.now - 10}-{i}", "V")


def test_the_second_loss_in_a_row_waits_twice_the_interval_and_the_wait_doubles():
    clock = Clock()
    backoff = ReplacementBackoff(5.0, clock=clock)
    backoff.started([("a", "V")])
    clock.now = 1000
    backoff.lost("a", "V")
    assert backoff.wait("V") == 0.0
    backoff.started([("b", "V")])
    clock.now += 10
    backoff.lost("b", "V")
    assert (backoff.streak("V"), backoff.wait("V")) == (2, 10.0)
    crash_loop(backoff, clock, 1)
    assert (backoff.streak("V"), backoff.wait("V")) == (3, 20.0)


def test_a_replacement_that_stays_healthy_ends_the_streak_even_if_a_bring_up_fails_later():
    clock = Clock()
    backoff = ReplacementBackoff(5.0, clock=clock)
    crash_loop(backoff, clock, 8)
    assert backoff.wait("V") > 0
    clock.now += backoff.wait("V")
    backoff.started([("ok", "V")])
    clock.now += STABLE_SECONDS
    assert backoff.streak("V") == 0
    backoff.failed("V")  # another slot's bring-up: the first failure after a healthy spell
    assert (backoff.streak("V"), backoff.wait("V")) == (1, 0.0)
    backoff.failed("V")  # and the ones after it count again, though "ok" still serves
    assert backoff.streak("V") == 2 and backoff.wait("V") > 0


def test_a_young_replacement_keeps_the_streak_and_retired_instances_are_forgotten():
    clock = Clock()
    backoff = ReplacementBackoff(5.0, clock=clock)
    crash_loop(backoff, clock, 3)
    backoff.started([("young", "V")])
    clock.now += STABLE_SECONDS / 2
    assert backoff.streak("V") == 3
    for i in range(100):
        backoff.started([(f"r{i}", "V")])
        backoff.retired(f"r{i}")
    backoff.retired("young")
    assert backoff._started == {}

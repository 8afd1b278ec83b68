"""How soon healing replaces a variant's lost instance again.

The first loss is replaced at once. While replacements keep failing to come up, or keep dying within
`STABLE_SECONDS` of their start (a crash loop), the second attempt in a row waits twice the
health-check interval and each next one twice as long as the last, up to `MAX_DELAY` (the kubelet's
CrashLoopBackOff, in the endpoint's own terms). The count starts again once the variant's latest
started instance has served `STABLE_SECONDS` (whether it is lost later or a bring-up fails), and an
instance that served that long before it was lost starts it again too. The endpoint stays InService
and keeps trying; its variant's status says how often it failed and when the next attempt is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

STABLE_SECONDS = 60.0
MAX_DELAY = 300.0


@dataclass
class _Streak:
    count: int = 0
    next_attempt: float = 0.0


class ReplacementBackoff:
    def __init__(self, base: float, clock: Callable[[], float] = time.monotonic):
        self.base, self.clock = max(base, 0.1), clock
        self._streaks: dict[str, _Streak] = {}
        self._started: dict[str, float] = {}  # serving instances: when each became healthy
        self._latest: dict[str, str] = {}  # variant -> the instance of it that became healthy last

    def started(self, instances: Iterable[tuple[str, str]]) -> None:
        """(instance name, variant) of instances that have just become healthy."""
        now = self.clock()
        for name, variant in instances:
            self._started[name] = now
            self._latest[variant] = name

    def lost(self, name: str, variant: str) -> None:
        """An instance exited or stopped answering /ping; one not seen starting counts as stable."""
        self._settle(variant)
        started = self._started.pop(name, None)
        if started is None or self.clock() - started >= STABLE_SECONDS:
            self._streaks.pop(variant, None)
        self._fail(variant)

    def retired(self, name: str) -> None:
        """An instance was stopped on purpose (an update, a scale-in, DeleteEndpoint): no loss."""
        self._started.pop(name, None)

    def failed(self, variant: str) -> None:
        """A replacement did not come up."""
        self._settle(variant)
        self._latest.pop(variant, None)  # the latest attempt is this one, which failed
        self._fail(variant)

    def wait(self, variant: str) -> float:
        """Seconds until the variant's next replacement may start (0: now)."""
        self._settle(variant)
        streak = self._streaks.get(variant)
        return max(0.0, streak.next_attempt - self.clock()) if streak else 0.0

    def streak(self, variant: str) -> int:
        """Losses and failed replacements in a row."""
        self._settle(variant)
        streak = self._streaks.get(variant)
        return streak.count if streak else 0

    def _settle(self, variant: str) -> None:
        """The crash loop is over once the variant's latest replacement has served STABLE_SECONDS."""
        started = self._started.get(self._latest.get(variant, ""))
        if started is not None and self.clock() - started >= STABLE_SECONDS:
            self._streaks.pop(variant, None)
            del self._latest[variant]  # once: later failures of other slots count from here

    def delay(self, count: int) -> float:
        """The wait after `count` losses or failures in a row."""
        return 0.0 if count <= 1 else min(MAX_DELAY, self.base * 2 ** (count - 1))

    def _fail(self, variant: str) -> None:
        streak = self._streaks.setdefault(variant, _Streak())
        streak.count += 1
        streak.next_attempt = self.clock() + self.delay(streak.count)

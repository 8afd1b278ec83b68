"""State changes of training jobs and endpoints, one log line each (`forklift serve` prints them).

The stores call these after a write commits, so every change is told once whichever thread made it.
The lines carry names, statuses and reasons, never a request's contents.
"""

from __future__ import annotations

import logging

log = logging.getLogger("forklift.events")


def training_job(name: str, before: tuple[str, str] | None, status: str, secondary: str,
                 failure: str | None = None) -> None:
    if before == (status, secondary):
        return
    why = f": {failure}" if failure and status == "Failed" else ""
    log.info("training job %s: %s / %s%s", name, status, secondary, why)


def endpoint(name: str, before: str | None, status: str, failure: str | None = None) -> None:
    if before == status:
        return
    why = f": {failure}" if failure and status == "Failed" else ""
    log.info("endpoint %s: %s%s", name, status, why)

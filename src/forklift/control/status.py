"""Status changes of a training job, as SageMaker reports them.

TrainingJobStatus is coarse (InProgress, Completed, Failed, Stopping, Stopped); SecondaryStatus is
the step (Pending, Starting, Downloading, Training, Uploading, ...). Every change of step closes
the current SecondaryStatusTransitions entry and opens a new one; a new message for the same step
only rewrites that entry's StatusMessage (which is how the image-pull progress shows).
"""

from __future__ import annotations

import time

from forklift.control.models import TrainingJobRow

TERMINAL = ("Completed", "Failed", "Stopped")
# Which primary status each secondary status belongs to.
PRIMARY = {"Pending": "InProgress", "Starting": "InProgress", "Downloading": "InProgress",
           "Training": "InProgress", "Uploading": "InProgress", "Stopping": "Stopping",
           "Completed": "Completed", "Failed": "Failed", "Stopped": "Stopped", "MaxRuntimeExceeded": "Stopped"}
MAX_FAILURE_REASON = 1024


def step(row: TrainingJobRow, secondary: str, message: str, now: float | None = None) -> None:
    """Move `row` to `secondary` (or update the message when it is already there)."""
    now = now or time.time()
    transitions = [dict(t) for t in row.transitions or []]
    current = transitions[-1] if transitions else None
    if current is not None and current["Status"] == secondary and "EndTime" not in current:
        current["StatusMessage"] = message
    else:
        if current is not None and "EndTime" not in current:
            current["EndTime"] = now
        transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": message})
    if secondary in ("Completed", "Failed", "Stopped", "MaxRuntimeExceeded"):
        transitions[-1]["EndTime"] = now
    row.transitions = transitions
    row.secondary_status = secondary
    # Uploading after a stop still belongs to Stopping, as on SageMaker.
    if not (row.status == "Stopping" and secondary == "Uploading"):
        row.status = PRIMARY[secondary]


def fail(row: TrainingJobRow, reason: str, now: float | None = None) -> None:
    now = now or time.time()
    row.failure_reason = reason[:MAX_FAILURE_REASON]
    row.phase = "done"
    if row.training_start and not row.training_end:
        row.training_end = now
    step(row, "Failed", reason[:MAX_FAILURE_REASON], now)


def is_terminal(row: TrainingJobRow) -> bool:
    return row.status in TERMINAL

"""After a restart: find every job the previous server left unfinished and decide its fate.

    queued     -> stays queued (the scheduler admits it again)
    preparing  -> queued again: pulling and staging are repeatable
    running    -> its container is re-adopted (running, or ended while the server was down);
                  if the backend no longer knows it, the job fails with a reason saying so
    uploading  -> resumed: the exit status is recorded, only the upload is repeated
"""

from __future__ import annotations

import logging

from forklift.control import status
from forklift.control.launching import TrainingLauncher
from forklift.control.models import TrainingJobRow
from forklift.control.store import JobStore
from forklift.runtime import ContainerHandle

log = logging.getLogger(__name__)


def reconcile(store: JobStore, launcher: TrainingLauncher) -> dict[str, ContainerHandle | None]:
    """Fix up active jobs; returns the jobs to resume now (name -> adopted container or None)."""
    resume: dict[str, ContainerHandle | None] = {}
    for row in store.active():
        if row.phase == "preparing":
            store.update(row.name, _requeue)
        elif row.phase == "running":
            handle = launcher.adopt(row.container_name) if row.container_name else None
            if handle is None:
                reason = (f"InternalServerError: the training container {row.container_name} was gone when the "
                          "forklift server restarted; its exit status is unknown")
                store.update(row.name, lambda r, reason=reason: status.fail(r, reason))
                continue
            log.info("re-adopted container %s of training job %s", row.container_name, row.name)
            resume[row.name] = handle
        elif row.phase == "uploading":
            resume[row.name] = None
    return resume


def _requeue(row: TrainingJobRow) -> None:
    row.phase = "queued"
    status.step(row, "Starting", "The forklift server restarted while the job was being prepared; starting again")

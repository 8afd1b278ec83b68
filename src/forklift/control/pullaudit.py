"""The audit record of an image pull by a training job or an endpoint (see `forklift.audit`).

Recorded here, where the control plane knows whose job or endpoint pulls, so that `forklift.images`
stays below it: the principal is the owner (`created_by`) of the job or endpoint, and the record
names the registry, repository and digest, never the credentials the pull used.
"""

from __future__ import annotations

import logging

from forklift.audit import OK, AuditLog, outcome_of
from forklift.config import Settings
from forklift.errors import ForkliftError
from forklift.reference import parse

log = logging.getLogger(__name__)
UNKNOWN_OWNER = "unknown"  # a job or endpoint created before owners were recorded


def record_pull(settings: Settings, *, owner: str | None, resource: str, image: str, digest: str | None = None,
                error: BaseException | None = None) -> None:
    """Append the record of `resource` (a job's or endpoint's ARN) pulling `image`: `digest` when it
    was pulled, `error` when it was not."""
    try:
        reference = parse(image)
        registry, repository, digest = reference.registry, reference.repository, digest or reference.digest
    except ForkliftError:
        registry = repository = None
    record = {"event": "pull", "principal": owner or UNKNOWN_OWNER, "operation": "PullImage", "resource": resource,
              "outcome": OK if error is None else outcome_of(error), "registry": registry,
              "repository": repository, "digest": digest}
    try:
        AuditLog(settings.home).append(record)
    except OSError:
        log.exception("the audit record of %s pulling %s could not be written", resource, image)

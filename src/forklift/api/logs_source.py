"""The CloudWatch Logs subset's source: training-job and endpoint logs, merged into one LogSource.

`forklift.control.logs.TrainingLogSource` serves `/aws/sagemaker/TrainingJobs`,
`forklift.control.inference.logs.EndpointLogSource` every `/aws/sagemaker/Endpoints/<name>`; both
answer the `LogSource` protocol (their objects carry the attributes `forklift.api.logs` reads).
`MergedLogSource` lists the groups of all of them and sends a group's streams and events to the one
source that owns the group's name.
"""

from __future__ import annotations

from collections.abc import Sequence

from forklift.api.logsource import GroupInfo, LogEvent, LogSource, StreamInfo
from forklift.control import ControlPlane
from forklift.control.inference.logs import GROUP_PREFIX, EndpointLogSource
from forklift.control.logs import GROUP


class MergedLogSource:
    """Several LogSources behind one; `owners` maps a group-name prefix to the source owning it."""

    def __init__(self, owners: dict[str, LogSource]):
        self.owners = owners

    def _owner(self, group: str) -> LogSource | None:
        # the longest matching prefix wins, so a more specific owner may sit beside a general one
        matching = [prefix for prefix in self.owners if group.startswith(prefix)]
        return self.owners[max(matching, key=len)] if matching else None

    def groups(self, prefix: str | None) -> Sequence[GroupInfo]:
        found = {}
        for source in self.owners.values():
            for group in source.groups(prefix):
                found.setdefault(group.name, group)
        return sorted(found.values(), key=lambda g: g.name)

    def streams(self, group: str, prefix: str | None) -> Sequence[StreamInfo] | None:
        owner = self._owner(group)
        return owner.streams(group, prefix) if owner is not None else None

    def events(self, group: str, stream: str, start_index: int, limit: int) -> tuple[Sequence[LogEvent], int] | None:
        owner = self._owner(group)
        return owner.events(group, stream, start_index, limit) if owner is not None else None


def log_source_for(plane: ControlPlane) -> LogSource:
    return MergedLogSource({GROUP: plane.logs, GROUP_PREFIX: EndpointLogSource(plane.settings.home)})

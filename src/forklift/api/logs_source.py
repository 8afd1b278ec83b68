"""The CloudWatch Logs subset's source of training-job logs: the control plane's log files.

`forklift.control.logs.TrainingLogSource` already answers the `LogSource` protocol (its objects
carry the attributes `forklift.api.logs` reads); this module is where the API picks it up, so
endpoint logs can be merged in here later without touching the control plane.
"""

from __future__ import annotations

from forklift.api.logsource import LogSource
from forklift.control import ControlPlane


def log_source_for(plane: ControlPlane) -> LogSource:
    return plane.logs

"""The control plane's own keys in `$FORKLIFT_HOME/config.toml` (config.py stays unaware of them):

    platform_registries = ["registry.example.com"]   # images allowed with TrainingRepositoryAccessMode=Platform
    stop_grace_seconds = 120                          # SIGTERM -> SIGKILL on StopTrainingJob / MaxRuntime
    [containers]                                      # every training and endpoint container (runc)
    pids_limit = 16384                                # processes and threads in one container: a fork bomb stops there
    log_max_bytes = "64 MiB"                          # a container's log stream keeps its newest output, this much ...
    log_files = 4                                     # ... across this many files (rotated; at least 2)
    [capacity]                                        # what the scheduler may hand out (default: this machine)
    cpus = 8
    memory_gib = 32

ECR registries (`<account>.dkr.ecr.<region>.amazonaws.com`) are always platform registries, as on
SageMaker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from forklift.config import ConfigError, Settings, parse_size, read_config_file
from forklift.control.eventlog import LogLimits
from forklift.control.instance_types import machine_memory_bytes
from forklift.reference import ECR_HOST

DEFAULT_STOP_GRACE = 120.0
# Threads count too: a framework's data loaders and thread pools stay far below it, a fork bomb does not.
DEFAULT_PIDS_LIMIT = 16384


@dataclass(frozen=True)
class ControlSettings:
    platform_registries: frozenset[str] = field(default_factory=frozenset)
    stop_grace_seconds: float = DEFAULT_STOP_GRACE
    capacity_cpus: float = float(os.cpu_count() or 1)
    capacity_memory: int = 0
    pids_limit: int = DEFAULT_PIDS_LIMIT
    log_limits: LogLimits = field(default_factory=LogLimits)

    def is_platform_registry(self, registry: str) -> bool:
        return registry in self.platform_registries or bool(ECR_HOST.fullmatch(registry))


def control_settings(settings: Settings) -> ControlSettings:
    path, data = read_config_file(settings.home)
    registries = data.get("platform_registries", [])
    if not isinstance(registries, list) or not all(isinstance(r, str) for r in registries):
        raise ConfigError(f"{path}: platform_registries must be a list of host[:port] strings")
    capacity = data.get("capacity", {})
    containers = data.get("containers", {})
    try:
        grace = float(data.get("stop_grace_seconds", DEFAULT_STOP_GRACE))
        cpus = float(capacity.get("cpus", os.cpu_count() or 1))
        memory = int(float(capacity.get("memory_gib", 0)) * 1024**3) or machine_memory_bytes()
    except (TypeError, ValueError, AttributeError):
        raise ConfigError(f"{path}: stop_grace_seconds and [capacity] cpus/memory_gib must be numbers") from None
    max_bytes = parse_size(containers["log_max_bytes"]) if "log_max_bytes" in containers else None
    limits = LogLimits(max_bytes or LogLimits.max_bytes, int(containers.get("log_files", LogLimits.files)))
    return ControlSettings(frozenset(registries), grace, cpus, memory,
                           int(containers.get("pids_limit", DEFAULT_PIDS_LIMIT)), limits)

"""Inference keys in `$FORKLIFT_HOME/config.toml` (all optional):

    [inference]
    startup_health_check_timeout_seconds = 240   # default when a variant gives no
                                                 # ContainerStartupHealthCheckTimeoutInSeconds (AWS: 4 min)
    health_check_interval_seconds = 2            # GET /ping of every serving instance
    unhealthy_after_failed_pings = 3             # consecutive failures before an instance is replaced
    stop_grace_seconds = 30                      # SIGTERM -> SIGKILL when an instance is retired (AWS: 30 s)
"""

from __future__ import annotations

from dataclasses import dataclass

from forklift.config import ConfigError, Settings, read_config_file


@dataclass(frozen=True)
class InferenceSettings:
    startup_timeout: float = 240.0
    health_interval: float = 2.0
    unhealthy_after: int = 3
    stop_grace: float = 30.0


def inference_settings(settings: Settings) -> InferenceSettings:
    path, data = read_config_file(settings.home)
    section = data.get("inference", {})
    try:
        return InferenceSettings(
            startup_timeout=float(section.get("startup_health_check_timeout_seconds", 240)),
            health_interval=float(section.get("health_check_interval_seconds", 2)),
            unhealthy_after=int(section.get("unhealthy_after_failed_pings", 3)),
            stop_grace=float(section.get("stop_grace_seconds", 30)))
    except (TypeError, ValueError, AttributeError):
        raise ConfigError(f"{path}: the [inference] keys must be numbers") from None

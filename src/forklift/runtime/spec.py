"""The plain objects a runtime receives and returns: what to run, and how it ended.

Nothing here knows about SageMaker, registries or runc. A `ContainerSpec` describes one container
(an unpacked image rootfs, its OCI image config, overrides and limits); an `ExitStatus` is how it
ended. Names are validated once, here, so every layer below can build paths, cgroup names and
namespace names from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from forklift.runtime.errors import ContainerRuntimeError

CONTAINER_PREFIX = "forklift-"

# runc accepts [\w+-.]; the name also becomes a cgroup directory, a netns lease owner and a
# hostname, so stay conservative.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class SpecError(ContainerRuntimeError, ValueError):
    """A ContainerSpec cannot be turned into a container (bad name, missing command, ...)."""


class NetworkMode(StrEnum):
    NONE = "none"  # a fresh network namespace with only loopback
    ISOLATED = "isolated"  # own netns + veth /30; host reachable only on allowed ports
    HOST = "host"  # the host's network namespace, no isolation


@dataclass(frozen=True)
class Mount:
    source: Path
    destination: str
    read_only: bool = False


@dataclass(frozen=True)
class Resources:
    """CPU, memory and GPUs for a container, e.g. resolved from an `ml.*` instance type."""

    cpus: float
    memory_bytes: int
    gpus: int = 0
    clamped: bool = False
    warning: str | None = None
    instance_type: str | None = None


@dataclass
class ContainerSpec:
    name: str  # forklift adds the "forklift-" prefix for the runc container id
    rootfs: Path  # unpacked image rootfs; a shared read-only cache, never modified
    state_dir: Path  # this container's own directory: bundle, logs, exit status
    image_config: dict = field(default_factory=dict)  # OCI image config "config" object
    entrypoint: list[str] | None = None  # replaces Entrypoint and clears Cmd (docker semantics)
    args: list[str] | None = None  # replaces Cmd
    env: dict[str, str] = field(default_factory=dict)  # merged over the image's Env
    workdir: str | None = None
    user: str | None = None  # "uid[:gid]" or "name[:group]" resolved in the rootfs
    mounts: list[Mount] = field(default_factory=list)
    cpus: float | None = None
    memory_bytes: int | None = None
    pids_limit: int | None = None
    gpu_count: int = 0
    network: NetworkMode | str = NetworkMode.ISOLATED
    allowed_host_ports: list[int] = field(default_factory=list)
    hostname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name or ""):
            raise SpecError(f"invalid container name {self.name!r}: use letters, digits, '_', '.', '-' (max 100)")
        try:
            self.network = NetworkMode(self.network)
        except ValueError:
            raise SpecError(f"invalid network mode {self.network!r}: one of none, isolated, host") from None
        self.rootfs = Path(self.rootfs)
        self.state_dir = Path(self.state_dir)
        for port in self.allowed_host_ports:
            if not 0 < int(port) < 65536:
                raise SpecError(f"invalid allowed host port {port!r}")
        if self.cpus is not None and self.cpus <= 0:
            raise SpecError(f"cpus must be positive, got {self.cpus}")
        if self.memory_bytes is not None and self.memory_bytes < 6 * 1024 * 1024:
            raise SpecError(f"memory_bytes too small: {self.memory_bytes}")
        if self.gpu_count < 0:
            raise SpecError("gpu_count must be >= 0")

    @property
    def container_id(self) -> str:
        return container_id(self.name)


def container_id(name: str) -> str:
    """The runc container id for a forklift name ("train-1" -> "forklift-train-1")."""
    return name if name.startswith(CONTAINER_PREFIX) else CONTAINER_PREFIX + name


def name_of(container_id: str) -> str:
    """The forklift name for a runc container id ("forklift-train-1" -> "train-1")."""
    return container_id.removeprefix(CONTAINER_PREFIX)


@dataclass(frozen=True)
class ExitStatus:
    code: int  # process exit code; 128+N when killed by signal N (docker convention)
    oom_killed: bool = False
    signal: int | None = None  # set when the container's init was killed by a signal
    reason: str = "exited"  # completed | failed | oom-killed | signaled | stopped | killed | error | lost
    message: str = ""  # human-readable detail, e.g. the runtime's error
    refused_forks: int = 0  # forks and threads the pids limit refused (where the backend counts them)

    def to_json(self) -> dict:
        return {"code": self.code, "oom_killed": self.oom_killed, "signal": self.signal,
                "reason": self.reason, "message": self.message, "refused_forks": self.refused_forks}

    @classmethod
    def from_json(cls, data: dict) -> ExitStatus:
        return cls(code=int(data["code"]), oom_killed=bool(data.get("oom_killed")),
                   signal=data.get("signal"), reason=str(data.get("reason", "exited")),
                   message=str(data.get("message", "")), refused_forks=int(data.get("refused_forks") or 0))

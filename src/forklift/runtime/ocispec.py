"""An OCI runtime config.json from a ContainerSpec and its image config.

Pure functions: nothing here starts processes or touches the host besides reading the rootfs's
/etc/passwd and /etc/group, the caller's rlimits and /dev/nvidia* nodes.

The confinement is docker's default: its capability set (effective only for root), no new
privileges, its seccomp profile (runtime/seccomp.py: no namespaces, no mounts, no keyring, no
io_uring, ...), its masked and read-only /proc and /sys paths, and the image's `User`.
"""

from __future__ import annotations

import os
import resource
import shutil
import stat
import sys
from pathlib import Path

from forklift.runtime import seccomp, users
from forklift.runtime.spec import ContainerSpec, NetworkMode, SpecError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD = 100_000
NOFILE_DEFAULT = 1_048_576  # docker's default, clamped to what the caller may grant

# Docker's default capability set.
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
# Docker's (moby 28) masked paths: host hardware, kernel memory, keyrings and timing side channels.
MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# NVIDIA character devices: major 195, minor N for GPU N and 255 for nvidiactl.
NVIDIA_MAJOR = 195
NVIDIA_CTL_MINOR = 255


def standard_mounts() -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]


def command_line(spec: ContainerSpec) -> list[str]:
    """Entrypoint + Cmd with docker's override rules."""
    entrypoint = list(spec.image_config.get("Entrypoint") or [])
    cmd = list(spec.image_config.get("Cmd") or [])
    if spec.entrypoint is not None:
        entrypoint, cmd = list(spec.entrypoint), []
    if spec.args is not None:
        cmd = list(spec.args)
    argv = entrypoint + cmd
    if not argv:
        raise SpecError("no command: the image has no Entrypoint/Cmd and the spec gives none")
    return argv


def environment(spec: ContainerSpec, extra: dict[str, str] | None = None, home: str = "/root") -> list[str]:
    """Image Env, then the spec's env over it; PATH, HOSTNAME and HOME (the user's, as docker sets
    it) filled in when missing."""
    env: dict[str, str] = {}
    for item in spec.image_config.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    env.update(extra or {})
    env.update(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", hostname(spec))
    env.setdefault("HOME", home)
    return [f"{k}={v}" for k, v in env.items()]


def working_dir(spec: ContainerSpec) -> str:
    cwd = spec.workdir or spec.image_config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise SpecError(f"working directory must be absolute: {cwd!r}")
    return cwd


def hostname(spec: ContainerSpec) -> str:
    return (spec.hostname or spec.name)[:63]


def resolve_user(rootfs: Path, user: str | None) -> dict:
    """OCI process.user for "uid[:gid]" or "name[:group]", resolved in the rootfs's /etc files."""
    return users.resolve(rootfs, user).oci()


def rlimits() -> list[dict]:
    """NOFILE/NPROC no higher than the caller's hard limits: without CAP_SYS_RESOURCE raising fails."""
    out = []
    for name, res, want in (("RLIMIT_NOFILE", resource.RLIMIT_NOFILE, NOFILE_DEFAULT),
                            ("RLIMIT_NPROC", resource.RLIMIT_NPROC, None)):
        hard = resource.getrlimit(res)[1]
        value = hard if want is None else (want if hard == resource.RLIM_INFINITY else min(want, hard))
        if value == resource.RLIM_INFINITY:
            continue  # nothing to clamp; leave the inherited limit
        out.append({"type": name, "hard": value, "soft": value})
    return out


def bind_mounts(spec: ContainerSpec) -> list[dict]:
    out = []
    for m in spec.mounts:
        if not m.destination.startswith("/"):
            raise SpecError(f"mount destination must be absolute: {m.destination!r}")
        source = Path(m.source).absolute()
        if not source.exists():
            raise SpecError(f"mount source does not exist: {source}")
        out.append({"destination": m.destination, "type": "bind", "source": str(source),
                    "options": ["rbind", "nosuid", "nodev", "ro" if m.read_only else "rw"]})
    return out


def _char_device(path: Path, major: int, minor: int) -> dict:
    """A linux.devices entry, using the host node's real numbers when it exists."""
    try:
        st = os.stat(path)
        if stat.S_ISCHR(st.st_mode):
            major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    except OSError:
        pass
    return {"path": str(path), "type": "c", "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0}


def gpu_config(count: int, dev: Path = Path("/dev"), cli: str | None = None) -> dict:
    """Devices, cgroup allow rules, hook and env that give a container `count` NVIDIA GPUs.

    The device nodes are injected by runc; the driver's user-space libraries are mounted by
    `nvidia-container-cli` (when installed) from a createRuntime hook, which needs the pid.
    """
    if count <= 0:
        return {"devices": [], "rules": [], "hooks": {}, "env": {}}
    devices = [_char_device(dev / f"nvidia{i}", NVIDIA_MAJOR, i) for i in range(count)]
    devices.append(_char_device(dev / "nvidiactl", NVIDIA_MAJOR, NVIDIA_CTL_MINOR))
    for extra in ("nvidia-uvm", "nvidia-uvm-tools"):  # dynamic major: only when the node exists
        if (dev / extra).exists():
            devices.append(_char_device(dev / extra, 0, 0))
    rules = [{"allow": True, "type": "c", "major": d["major"], "minor": d["minor"], "access": "rwm"}
             for d in devices]
    visible = ",".join(str(i) for i in range(count))
    hooks = {}
    if cli:
        hooks["createRuntime"] = [{
            "path": sys.executable,
            "args": [sys.executable, "-m", "forklift.runtime.gpuhook", "--cli", cli, "--devices", visible],
            "timeout": 60,
        }]
    env = {"NVIDIA_VISIBLE_DEVICES": visible, "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}
    return {"devices": devices, "rules": rules, "hooks": hooks, "env": env}


def namespaces(spec: ContainerSpec, netns_path: str | None) -> list[dict]:
    ns = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if spec.network == NetworkMode.ISOLATED:
        if not netns_path:
            raise SpecError("isolated network needs a network namespace path")
        ns.append({"type": "network", "path": netns_path})
    elif spec.network == NetworkMode.NONE:
        ns.append({"type": "network"})  # fresh namespace: loopback only
    return ns  # host: no network namespace entry


def cgroups_path(name: str) -> str:
    return f"/forklift/{name}"


def build_config(spec: ContainerSpec, root_path: Path, netns_path: str | None = None,
                 nvidia_cli: str | None = None, dev: Path = Path("/dev"),
                 extra_env: dict[str, str] | None = None) -> dict:
    """The config.json for `spec`, with `root_path` (the per-container overlay) as the root.

    `nvidia_cli` defaults to `nvidia-container-cli` on PATH when the spec asks for GPUs;
    `extra_env` is set under the spec's own env (which wins).
    """
    if spec.gpu_count and nvidia_cli is None:
        nvidia_cli = shutil.which("nvidia-container-cli")
    gpus = gpu_config(spec.gpu_count, dev=dev, cli=nvidia_cli)
    user = users.image_user(spec)
    caps = list(DEFAULT_CAPABILITIES)
    privileged = user.is_root  # another user starts with nothing in effect, as under docker
    process = {
        "terminal": False,
        "user": user.oci(),
        "args": command_line(spec),
        "env": environment(spec, {**gpus["env"], **(extra_env or {})}, home=user.home),
        "cwd": working_dir(spec),
        "capabilities": {"bounding": caps, "effective": caps if privileged else [],
                         "permitted": caps if privileged else []},
        "rlimits": rlimits(),
        "noNewPrivileges": True,
    }
    resources: dict = {"devices": [{"allow": False, "access": "rwm"}] + gpus["rules"]}
    if spec.memory_bytes:
        resources["memory"] = {"limit": int(spec.memory_bytes), "swap": int(spec.memory_bytes)}
    if spec.cpus:
        resources["cpu"] = {"quota": max(1000, int(spec.cpus * CPU_PERIOD)), "period": CPU_PERIOD}
    if spec.pids_limit:
        resources["pids"] = {"limit": int(spec.pids_limit)}
    linux: dict = {
        "cgroupsPath": cgroups_path(spec.name),
        "resources": resources,
        "namespaces": namespaces(spec, netns_path),
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "seccomp": seccomp.default_profile(),
    }
    if gpus["devices"]:
        linux["devices"] = gpus["devices"]
    config = {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": str(root_path), "readonly": False},
        "hostname": hostname(spec),
        "mounts": standard_mounts() + bind_mounts(spec),
        "linux": linux,
        "annotations": {str(k): str(v) for k, v in spec.labels.items()},
    }
    if gpus["hooks"]:
        config["hooks"] = gpus["hooks"]
    return config

"""The runc command line, one method per verb.

The one other place that runs runc is the supervisor's launcher (`launcher.py`), whose `runc run
--detach` must start with nothing but the standard library loaded."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from forklift.runtime.errors import ContainerRuntimeError


class RuncError(ContainerRuntimeError, RuntimeError):
    pass


class RuncCli:
    DEFAULT_ROOT = "/run/runc"  # runc's --root when run as root

    def __init__(self, binary: str = "runc", root: str | Path | None = None):
        self.binary = binary
        self.root = str(root) if root else None

    def to_json(self) -> dict:
        return {"binary": self.binary, "root": self.root}

    @classmethod
    def from_json(cls, data: dict) -> RuncCli:
        return cls(binary=data.get("binary", "runc"), root=data.get("root"))

    def argv(self, *args: str, log: Path | None = None) -> list[str]:
        out = [self.binary]
        if self.root:
            out += ["--root", self.root]
        if log:
            out += ["--log", str(log), "--log-format", "json"]
        return out + list(args)

    def _run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.argv(*args), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise RuncError(f"runc {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def exists(self, container_id: str) -> bool:
        """Whether runc knows the container, read from its state directory without running runc."""
        return (Path(self.root or self.DEFAULT_ROOT) / container_id / "state.json").exists()

    def state(self, container_id: str) -> dict | None:
        proc = self._run("state", container_id)
        if proc.returncode != 0:
            return None
        try:
            return json.loads(proc.stdout)
        except ValueError:
            return None

    def list(self) -> list[dict]:
        proc = self._run("list", "--format", "json")
        if proc.returncode != 0 or not proc.stdout.strip():
            return []
        return json.loads(proc.stdout) or []

    def kill(self, container_id: str, signal: str = "TERM", all: bool = False) -> bool:
        args = ["kill"] + (["--all"] if all else []) + [container_id, signal]
        return self._run(*args).returncode == 0

    def delete(self, container_id: str, force: bool = False) -> bool:
        args = ["delete"] + (["--force"] if force else []) + [container_id]
        return self._run(*args).returncode == 0


def last_error(log: Path) -> str:
    """The last error runc wrote to its JSON log, or ''."""
    msg = ""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "fatal"):
            msg = entry.get("msg", "")
    return msg

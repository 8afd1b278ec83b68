"""What the demo's steps share: the step timer, the failure they raise, and `forklift serve` as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from forklift.errors import ForkliftError

DEMO_USER = "demo"


class DemoFailed(ForkliftError, RuntimeError):
    pass


@dataclass
class Timings:
    say: Callable[[str], None] = print
    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.say(f"==> {name}")
        start = time.perf_counter()
        try:
            yield
        except DemoFailed:
            raise
        except Exception as exc:
            raise DemoFailed(f"step '{name}' failed: {exc}") from exc
        elapsed = time.perf_counter() - start
        self.steps.append((name, elapsed))
        self.say(f"    done in {elapsed:.1f}s")

    def summary(self) -> str:
        width = max(len(name) for name, _ in self.steps)
        lines = [f"  {name:<{width}}  {seconds:6.1f}s" for name, seconds in self.steps]
        total = sum(seconds for _, seconds in self.steps)
        return "\n".join(["Timing summary:", *lines, f"  {'total':<{width}}  {total:6.1f}s"])


class Server:
    """`forklift serve` as a subprocess on a free port, for this demo's FORKLIFT_HOME."""

    def __init__(self, home: Path, log: Path):
        self.home = home
        self.process = subprocess.Popen(
            [sys.executable, "-m", "forklift", "serve", "--port", "0"], stdin=subprocess.DEVNULL,
            stdout=open(log, "ab"), stderr=subprocess.STDOUT, env={**os.environ, "FORKLIFT_HOME": str(home)})
        self.log = log
        deadline = time.monotonic() + 60
        server_file = home / "server.json"
        while not server_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise DemoFailed(f"forklift serve did not start; see {log}:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.url = json.loads(server_file.read_text())["url"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()

"""The main job: forklift end to end on its embedded defaults, loudly failing on any step.

A private registry with TLS (a generated CA registered in certs.d) and basic auth; a training image
and an inference image built and pushed with credentials; a credentials-provider function; then
`forklift serve` and AWS's documented boto3 code, unchanged but for the endpoint (set through
`AWS_ENDPOINT_URL_SAGEMAKER`): a training job from the private registry (Vpc mode, credentials
function), the trained model deployed to an endpoint, predictions; and the same training image as a
Gradient-style experiment.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
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


def run_demo(say: Callable[[str], None] = print, keep: bool = False) -> Timings:
    from forklift.demo.flows import DemoContext, run_flows

    timings = Timings(say=say)
    work = Path(tempfile.mkdtemp(prefix="forklift-demo-"))
    context = DemoContext(work=work, home=work / "home", password=secrets.token_urlsafe(18), say=say)
    try:
        run_flows(context, timings)
    finally:
        context.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"kept {work}")
    say(timings.summary())
    return timings

#!/usr/bin/env python3
"""How long the commands people type take to answer, against `skopeo --version` and Python's own start.

Each command runs `--runs` times in a fresh process (its own FORKLIFT_HOME, a `forklift server`
started for the commands that talk to one); the median wall time is printed beside two baselines
measured in the same run: `python -c pass` (the interpreter's own start, which every command pays)
and `skopeo --version` (a compiled CLI). The goal is an answer within 150 ms of Python's own start:
the `over python` column.

Usage: bench/cli.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORKLIFT = [sys.executable, "-m", "forklift"]
COMMANDS = [
    ["--version"], ["--help"], ["jobs", "--help"], ["instance-types", "--family", "m5"], ["config", "keys"],
    ["catalog", "image-uri", "kmeans", "--region", "us-east-1"], ["server", "status"], ["registry", "status"],
    ["samples", "data", "--rows", "5"], ["jobs", "list"], ["endpoints", "list"], ["models", "list"], ["ps"],
    ["images", "ls"], ["experiments", "list"], ["functions", "list"],
]


def timed(argv: list[str], env: dict[str, str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="forklift-bench-cli-"))
    env = {k: v for k, v in os.environ.items() if k not in ("FORKLIFT_URL", "AWS_ENDPOINT_URL_SAGEMAKER")}
    env.update(FORKLIFT_HOME=str(home), DOCKER_CONFIG=str(home / "docker"))
    started = subprocess.run([*FORKLIFT, "server", "start", "--port", str(free_port())], env=env,
                             capture_output=True, text=True, check=False)
    if started.returncode != 0:
        print(f"forklift server start failed: {started.stderr}", file=sys.stderr)
        return 1
    try:
        python = timed([sys.executable, "-c", "pass"], env, args.runs)
        skopeo = timed(["skopeo", "--version"], env, args.runs) if shutil.which("skopeo") else None
        print(f"python -c pass: {python * 1000:.0f} ms" +
              (f"; skopeo --version: {skopeo * 1000:.0f} ms" if skopeo else "; skopeo not installed"))
        print(f"{'command':<52} {'median':>8} {'over python':>12} {'vs skopeo':>10}")
        worst = 0.0
        for command in COMMANDS:
            wall = timed([*FORKLIFT, *command], env, args.runs)
            worst = max(worst, wall - python)
            ratio = f"{wall / skopeo:.1f}x" if skopeo else "-"
            print(f"{'forklift ' + ' '.join(command):<52} {wall * 1000:>6.0f}ms {(wall - python) * 1000:>10.0f}ms "
                  f"{ratio:>10}")
        print(f"slowest over python's start: {worst * 1000:.0f} ms (goal: 150 ms)")
    finally:
        subprocess.run([*FORKLIFT, "server", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

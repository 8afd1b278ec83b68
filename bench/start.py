#!/usr/bin/env python3
"""Container start latency: forklift's runtime vs plain `runc run` of a prepared bundle, same image, one run.

Start latency is the time from asking for a container until its process has run: the container
prints one line and exits, and the clock stops when that line is readable. forklift:
`RuncRuntime.start(spec)` on a cached (already unpacked) busybox rootfs — overlay, OCI spec,
supervisor, runc create/start — then the line appears in its log file. Baseline: `runc run` in the
foreground on a bundle prepared once with the same config, line read from its stdout pipe. Also
prints the time until forklift has recorded the exit status. Prints medians and the overhead in ms
(target < 50 ms).

Usage: bench/start.py [--runs 15] [--network none|isolated]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from forklift.runtime import ContainerSpec, RuncRuntime
from forklift.runtime.ocispec import build_config


def busybox_rootfs(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    for directory in ("proc", "dev", "sys", "tmp", "etc"):
        (root / directory).mkdir()
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--network", default="none", choices=["none", "isolated"])
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("runc"):
        print("needs root and runc (apt-get install runc)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="forklift-bench-start-"))
    try:
        rootfs = busybox_rootfs(work / "rootfs")
        runtime = RuncRuntime(state_root=work / "state")

        def spec(i: int) -> ContainerSpec:
            return ContainerSpec(name=f"bench-start-{os.getpid()}-{i}", rootfs=rootfs, state_dir=work / f"c{i}",
                                 args=["/bin/sh", "-c", "echo started"], network=args.network)

        bundle = work / "bundle"
        bundle.mkdir()
        config = build_config(spec(-1), rootfs)
        config["root"] = {"path": str(rootfs), "readonly": True}
        config["linux"].pop("cgroupsPath", None)
        (bundle / "config.json").write_text(json.dumps(config))

        forklift_ms, exit_ms, runc_ms = [], [], []
        for i in range(args.runs):
            start = time.perf_counter()
            handle = runtime.start(spec(i))
            while not handle.stdout_path.stat().st_size:
                time.sleep(0.0005)
            forklift_ms.append((time.perf_counter() - start) * 1000)
            status = handle.wait()
            exit_ms.append((time.perf_counter() - start) * 1000)
            handle.stop(1.0)
            if status is None or status.code != 0:
                print(f"forklift run {i} ended with {status}", file=sys.stderr)
                return 1

            start = time.perf_counter()
            plain = subprocess.Popen(["runc", "run", "--bundle", str(bundle), f"bench-plain-{os.getpid()}-{i}"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            plain.stdout.readline()
            runc_ms.append((time.perf_counter() - start) * 1000)
            plain.communicate()

        forklift_median, runc_median = statistics.median(forklift_ms), statistics.median(runc_ms)
        print(f"forklift, until the container has run ({args.network} network): {forklift_median:.1f} ms median "
              f"(min {min(forklift_ms):.1f}); until its exit status is recorded: {statistics.median(exit_ms):.1f} ms")
        print(f"plain runc run of a prepared bundle: {runc_median:.1f} ms median (min {min(runc_ms):.1f})")
        print(f"overhead: {forklift_median - runc_median:.1f} ms (target < 50 ms)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

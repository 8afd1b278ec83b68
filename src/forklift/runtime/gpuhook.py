"""OCI createRuntime hook: let `nvidia-container-cli` mount the NVIDIA driver into a container.

runc runs it with the container state JSON on stdin; the CLI needs the container's pid and rootfs.
Usage (from config.json): python -m forklift.runtime.gpuhook --cli PATH --devices 0,1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="forklift.runtime.gpuhook")
    ap.add_argument("--cli", required=True)
    ap.add_argument("--devices", required=True)
    ap.add_argument("--capabilities", default="compute,utility")
    opts = ap.parse_args(argv)
    state = json.load(sys.stdin)
    bundle = state["bundle"]
    with open(os.path.join(bundle, "config.json")) as f:
        root = json.load(f)["root"]["path"]
    rootfs = root if os.path.isabs(root) else os.path.join(bundle, root)
    caps = [f"--{c}" for c in opts.capabilities.split(",") if c]
    cmd = [opts.cli, "--load-kmods", "configure", f"--device={opts.devices}", *caps,
           f"--pid={state['pid']}", rootfs]
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())

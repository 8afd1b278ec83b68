#!/usr/bin/env python3
"""Unpack speed: forklift's safe unpacker vs `umoci unpack`, same image, one run.

Builds a multi-layer image of at least 300 MB (real files from this machine's /usr: many small files,
symlinks and large binaries, like a framework image), writes it as an OCI layout, then unpacks it with
each tool into an empty directory, alternating, several rounds. Prints medians and the ratio
forklift/umoci (target <= 1.0).

Usage: bench/unpack.py [--rounds 3] [--source DIR ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from forklift.config import load_settings
from forklift.images.build import build
from forklift.images.imagestore import ImageStore
from forklift.images.layout import OciLayout
from forklift.images.unpack import Layer, RootfsCache

DEFAULT_SOURCES = ["/usr/share", "/usr/bin", "/usr/include", "/usr/lib/python3"]


def du(path: Path) -> int:
    return sum(f.stat(follow_symlinks=False).st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", action="append", help="directories to layer (default: parts of /usr)")
    args = parser.parse_args()
    if not shutil.which("umoci"):
        print("umoci is not installed (apt-get install umoci): no baseline to compare with", file=sys.stderr)
        return 2
    sources = [Path(s) for s in (args.source or DEFAULT_SOURCES) if Path(s).is_dir()]

    work = Path(tempfile.mkdtemp(prefix="forklift-bench-unpack-"))
    try:
        os.environ["FORKLIFT_HOME"] = str(work / "home")
        store = ImageStore(load_settings())
        t0 = time.perf_counter()
        staged = []
        for i, source in enumerate(sources):
            # each layer holds one source tree at its own path, as a Dockerfile COPY would
            target = work / "src" / str(i) / source.relative_to("/")
            target.parent.mkdir(parents=True)
            subprocess.run(["cp", "-a", str(source), str(target)], check=True)
            staged.append(work / "src" / str(i))
        image = build(store, staged, tag="bench/unpack:1")
        config = store.config(image)
        size = sum(du(d) for d in staged)
        compressed = sum(layer.size for layer in image.layers)
        layout = OciLayout(work / "layout")
        blobs = {d.digest: store.blobs.path(d.digest) for d in [image.config_descriptor, *image.layers]}
        layout.write(image.manifest, "bench", blobs)
        shutil.rmtree(work / "src")
        print(f"image: {len(staged)} layers, {size / 1e6:.0f} MB of files, {compressed / 1e6:.0f} MB gzip "
              f"(built in {time.perf_counter() - t0:.1f}s)")

        layers = [Layer(store.blobs.path(d.digest), d.digest, d.media_type, diff_id)
                  for d, diff_id in zip(image.layers, config["rootfs"]["diff_ids"], strict=True)]
        forklift_times, umoci_times = [], []
        for round_ in range(args.rounds):
            cache_dir = work / f"forklift-{round_}"
            start = time.perf_counter()
            RootfsCache(cache_dir).get_or_unpack(layers)
            forklift_times.append(time.perf_counter() - start)
            shutil.rmtree(cache_dir)

            bundle = work / f"umoci-{round_}"
            start = time.perf_counter()
            subprocess.run(["umoci", "unpack", "--image", f"{layout.root}:bench", str(bundle)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            umoci_times.append(time.perf_counter() - start)
            shutil.rmtree(bundle)
            print(f"round {round_ + 1}: forklift {forklift_times[-1]:.2f}s  umoci {umoci_times[-1]:.2f}s")

        forklift_median, umoci_median = statistics.median(forklift_times), statistics.median(umoci_times)
        print(f"forklift unpack: {forklift_median:.2f}s median")
        print(f"umoci unpack:    {umoci_median:.2f}s median")
        print(f"ratio forklift/umoci: {forklift_median / umoci_median:.2f} (target <= 1.0)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

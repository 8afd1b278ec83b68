#!/usr/bin/env python3
"""Pull speed: `forklift images pull` vs `skopeo copy docker://… oci:…`, same image, same registry, one run.

Builds a multi-layer image of at least 300 MB (incompressible data, so gzip does not shrink it), pushes it
to a local CNCF distribution registry with TLS and basic auth, then pulls it with each tool from a cold
cache, alternating, several rounds. Prints the medians and the ratio forklift/skopeo (target <= 1.0).

Usage: bench/pull.py [--layers 4] [--layer-mb 80] [--rounds 3]
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
from forklift.credentials import Credentials, StaticKeychain
from forklift.devregistry import LocalRegistry, create_pki, install_ca
from forklift.images.build import build
from forklift.images.imagestore import ImageStore
from forklift.images.push import push_sync, source_from_store

USER, PASSWORD = "bench", "bench-password-0d9a"


def make_layer_dirs(root: Path, layers: int, layer_mb: int) -> list[Path]:
    dirs = []
    for i in range(layers):
        directory = root / f"layer{i}" / "data"
        directory.mkdir(parents=True)
        with open(directory / f"blob{i}.bin", "wb") as out:
            for _ in range(layer_mb):
                out.write(os.urandom(1 << 20))
        dirs.append(directory.parent)
    return dirs


def timed(command: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--layer-mb", type=int, default=80)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("skopeo"):
        print("skopeo is not installed (apt-get install skopeo): no baseline to compare with", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="forklift-bench-pull-"))
    try:
        home = work / "home"
        os.environ["FORKLIFT_HOME"] = str(home)
        pki = create_pki(work / "pki")
        with LocalRegistry(work / "registry", pki, htpasswd={USER: PASSWORD}) as registry:
            install_ca(pki, home / "certs.d", registry.address)
            store = ImageStore(load_settings())
            t0 = time.perf_counter()
            image = build(store, make_layer_dirs(work / "src", args.layers, args.layer_mb), tag="bench/pull:1")
            size = sum(layer.size for layer in image.layers)
            reference = f"{registry.address}/bench/pull:1"
            push_sync(source_from_store(store, image.reference), reference, store,
                      keychain=StaticKeychain(Credentials(USER, PASSWORD)))
            print(f"image: {args.layers} layers, {size / 1e6:.0f} MB compressed "
                  f"(built and pushed in {time.perf_counter() - t0:.1f}s)")

            forklift_times, skopeo_times = [], []
            for round_ in range(args.rounds):
                cold = work / f"cold-{round_}"
                (cold / "certs.d").mkdir(parents=True)
                install_ca(pki, cold / "certs.d", registry.address)
                env = {**os.environ, "FORKLIFT_HOME": str(cold)}
                forklift_times.append(timed(
                    [sys.executable, "-m", "forklift", "images", "pull", reference, "-u", USER, "--password-stdin"],
                    input=f"{PASSWORD}\n".encode(), env=env))
                skopeo_times.append(timed(
                    ["skopeo", "copy", "--src-creds", f"{USER}:{PASSWORD}",
                     "--src-cert-dir", str(cold / "certs.d" / registry.address),
                     f"docker://{reference}", f"oci:{work / f'skopeo-{round_}'}:pull"]))
                shutil.rmtree(cold)
                shutil.rmtree(work / f"skopeo-{round_}")
                print(f"round {round_ + 1}: forklift {forklift_times[-1]:.2f}s  skopeo {skopeo_times[-1]:.2f}s")

        forklift_median = statistics.median(forklift_times)
        skopeo_median = statistics.median(skopeo_times)
        print(f"forklift images pull: {forklift_median:.2f}s median ({size / forklift_median / 1e6:.0f} MB/s)")
        print(f"skopeo copy:          {skopeo_median:.2f}s median ({size / skopeo_median / 1e6:.0f} MB/s)")
        print(f"ratio forklift/skopeo: {forklift_median / skopeo_median:.2f} (target <= 1.0)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

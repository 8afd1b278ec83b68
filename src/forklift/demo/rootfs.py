"""A slim Python root filesystem built from this machine's own Debian Python, with no network.

busybox (static) for a shell, `/usr/bin/python3.11` with the shared libraries it and its extension
modules load, all of glibc/libgcc/libstdc++ (so manylinux wheels would load too), and the standard
library without tests and GUI modules: about 60 MB, built in a couple of seconds. The demo's sample
images (and the tests' Python images) start from it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from forklift.errors import ForkliftError

PYTHON = Path("/usr/bin/python3.11")
STDLIB = Path("/usr/lib/python3.11")
BUSYBOX = Path("/usr/bin/busybox")
STDLIB_EXCLUDE = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "config-3.11-x86_64-linux-gnu",
                  "__pycache__"}
RUNTIME_PACKAGES = ("libc6", "libgcc-s1", "libstdc++6")


class RootfsBuildError(ForkliftError, RuntimeError):
    pass


def _copy(src: str | Path, root: Path) -> None:
    dest = root / str(src).lstrip("/")
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)  # follows symlinks, like cp -L


def _shared_libraries(binary: Path) -> list[str]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    return re.findall(r"(/\S+)", out)


def build_python_rootfs(root: Path) -> Path:
    """Fill `root` (created if needed) with busybox and Python 3.11; returns `root`."""
    for needed, package in ((PYTHON, "python3.11"), (BUSYBOX, "busybox-static")):
        if not needed.exists():
            raise RootfsBuildError(f"{needed} not found: install Debian's {package} package")
    for directory in ("bin", "etc", "proc", "sys", "dev", "tmp", "usr/bin", "opt/ml/code", "opt/ml/model",
                      "opt/ml/input/data"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    subprocess.run(["chroot", str(root), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")

    _copy(PYTHON, root)
    os.symlink("python3.11", root / "usr" / "bin" / "python3")
    shutil.copytree(STDLIB, root / STDLIB.relative_to("/"), symlinks=True,
                    ignore=lambda _dir, names: {n for n in names if n in STDLIB_EXCLUDE})
    for library in _shared_libraries(PYTHON):
        _copy(library, root)
    for extension in (root / STDLIB.relative_to("/") / "lib-dynload").glob("*.so"):
        for library in _shared_libraries(extension):
            _copy(library, root)
    listed = subprocess.run(["dpkg", "-L", *RUNTIME_PACKAGES], capture_output=True, text=True).stdout.split()
    for path in listed:
        if re.search(r"\.so[.0-9]*$", path) and os.path.isfile(path):
            _copy(path, root)
    return root

"""The main job: a full run of forklift on its embedded defaults, on a fresh machine, loudly failing on any step.

Today it covers the private-registry part of the guides: start a private registry with TLS (a generated
CA registered in certs.d) and basic auth, build a small image, push it with credentials, then pull it
back into an empty store and check the digest. Training, inference and experiments join as they land.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from forklift.config import load_settings
from forklift.credentials import Credentials, StaticKeychain
from forklift.devregistry import LocalRegistry, create_pki, install_ca
from forklift.images.build import BuildOptions, build
from forklift.images.local import ImageStore
from forklift.images.pull import pull
from forklift.images.push import push, source_from_store

DEMO_USER = "demo"


class DemoFailed(RuntimeError):
    pass


@dataclass
class Timings:
    steps: list[tuple[str, float]] = field(default_factory=list)
    say: Callable[[str], None] = print

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.say(f"==> {name}")
        start = time.perf_counter()
        try:
            yield
        except Exception as exc:
            raise DemoFailed(f"step '{name}' failed: {exc}") from exc
        elapsed = time.perf_counter() - start
        self.steps.append((name, elapsed))
        self.say(f"    done in {elapsed:.2f}s")

    def summary(self) -> str:
        width = max(len(name) for name, _ in self.steps)
        lines = [f"  {name:<{width}}  {seconds:6.2f}s" for name, seconds in self.steps]
        total = sum(seconds for _, seconds in self.steps)
        return "\n".join(["Timing summary:", *lines, f"  {'total':<{width}}  {total:6.2f}s"])


def sample_rootfs(directory: Path) -> Path:
    """A tiny rootfs: static busybox (Debian's busybox-static) and a greeting."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise DemoFailed("busybox not found: install Debian's busybox-static package")
    (directory / "bin").mkdir(parents=True)
    (directory / "etc").mkdir()
    shutil.copy2(busybox, directory / "bin" / "busybox")
    (directory / "bin" / "sh").symlink_to("busybox")
    (directory / "etc" / "motd").write_text("hello from a private registry\n")
    return directory


def run_demo(say: Callable[[str], None] = print, keep: bool = False) -> Timings:
    timings = Timings(say=say)
    work = Path(tempfile.mkdtemp(prefix="forklift-demo-"))
    password = secrets.token_urlsafe(18)  # never printed: the demo shows credentials flowing, not their value
    keychain = StaticKeychain(Credentials(DEMO_USER, password))
    settings = load_settings()
    try:
        with timings.step("start a private registry (TLS with a generated CA, basic auth)"):
            pki = create_pki(work / "pki")
            registry = LocalRegistry(work / "registry", pki, htpasswd={DEMO_USER: password}).start()
            install_ca(pki, settings.home / "certs.d", registry.address)
            say(f"    registry at {registry.url}, CA in {settings.home / 'certs.d' / registry.address}")
        try:
            store = ImageStore(settings)
            reference = f"{registry.address}/demo/hello:1.0"
            with timings.step(f"build {reference}"):
                image = build(store, [sample_rootfs(work / "rootfs")], tag=reference,
                              options=BuildOptions(cmd=["/bin/sh", "-c", "cat /etc/motd"]))
                say(f"    digest {image.digest}")
            with timings.step("push it with credentials"):
                pushed = asyncio.run(push(source_from_store(store, reference), reference, store, keychain=keychain))
                say(f"    blobs: {', '.join(sorted(pushed.statuses.values()))}")
            with timings.step("pull it back into an empty store"):
                store.remove(reference)
                store.prune()
                pulled = asyncio.run(pull(reference, store, keychain=keychain))
                if pulled.image.digest != image.digest:
                    raise DemoFailed(f"pulled {pulled.image.digest}, pushed {image.digest}")
                say(f"    {pulled.fetched_blobs} blobs fetched and verified, digest {pulled.image.digest}")
            with timings.step("an anonymous pull is refused"):
                try:
                    asyncio.run(pull(reference, store))
                except Exception as exc:  # the point of the step: any refusal, with a clear message
                    say(f"    refused as expected: {exc}")
                else:
                    raise DemoFailed("the private registry served an anonymous client")
        finally:
            registry.stop()
            (settings.home / "certs.d" / registry.address / "ca.crt").unlink(missing_ok=True)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    say(timings.summary())
    return timings

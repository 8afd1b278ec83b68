"""`forklift run`: a handy `docker run` for images in private registries, on runc."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import uuid
from pathlib import Path

import click

from forklift import labels
from forklift.cli.images import check_platform, credential_options, keychain_from_options
from forklift.cli.progress import transfer_progress

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.


def _mount(text: str):
    from forklift.runtime import Mount

    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise click.BadParameter(f"'{text}': expected SRC:DST[:ro|rw]")
    source = Path(parts[0]).resolve()
    if not source.exists():
        raise click.BadParameter(f"'{text}': {source} does not exist")
    return Mount(source, parts[1], read_only=len(parts) == 3 and parts[2] == "ro")


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("image")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--instance-type", help="ml.* instance type for CPU, memory and GPU limits (clamped to this machine).")
@click.option("-e", "--env", multiple=True, help="KEY=VALUE (repeatable).")
@click.option("-v", "--mount", "mounts", multiple=True, help="SRC:DST[:ro] bind mount (repeatable).")
@click.option("--entrypoint", help="Override the image's entrypoint (a single executable).")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("--user", help="Run as uid[:gid] or name[:group] of the image (default: the image's User).")
@click.option("--publish", is_flag=True,
              help="Give the container its own address; port 8080 is reachable from the host.")
@click.option("--network", type=click.Choice(["none", "isolated", "host"]),
              help="Network mode (default: isolated with --publish, else none).")
@click.option("--name", help="Container name (default: a random one).")
@click.option("--platform", callback=check_platform, help="Platform to pull from a multi-platform image.")
@credential_options
def run(image: str, args: tuple[str, ...], instance_type: str | None, env: tuple[str, ...], mounts: tuple[str, ...],
        entrypoint: str | None, workdir: str | None, user: str | None, publish: bool, network: str | None,
        name: str | None, platform: str | None, username: str | None, password_stdin: bool) -> None:
    """Run IMAGE (pulled if needed) with ARGS, stream its logs, and exit with its exit code."""
    from forklift.config import load_settings
    from forklift.control.instance_types import resolve_instance_type
    from forklift.images.imagestore import ImageNotFound, ImageStore
    from forklift.images.rootfs import prepare_rootfs, pull_and_prepare
    from forklift.reference import parse
    from forklift.registry.manifest import parse_platform
    from forklift.runtime import ContainerExists, ContainerSpec, run_foreground

    if os.geteuid() != 0:
        raise click.ClickException("forklift run needs root (runc, cgroups and network namespaces)")
    limits = {}
    if instance_type:
        resources = resolve_instance_type(instance_type)
        if resources.warning:
            click.echo(f"warning: {resources.warning}", err=True)
        limits = {"cpus": resources.cpus, "memory_bytes": resources.memory_bytes, "gpu_count": resources.gpus}
    settings = load_settings()
    store = ImageStore(settings)
    try:
        rootfs, image_config = prepare_rootfs(store, store.get(image))
    except ImageNotFound:
        ref = parse(image)
        keychain = keychain_from_options(ref.registry, username, password_stdin)
        with transfer_progress() as progress:
            prepared = asyncio.run(pull_and_prepare(ref, store, keychain=keychain, progress=progress,
                                                    platform=parse_platform(platform) if platform else None))
        rootfs, image_config = prepared.rootfs, prepared.config

    environment = {}
    for item in env:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"'{item}': expected KEY=VALUE", param_hint="--env")
        environment[key] = value
    container_name = name or f"run-{uuid.uuid4().hex[:8]}"
    spec = ContainerSpec(
        name=container_name, rootfs=rootfs, state_dir=settings.home / "containers" / container_name,
        image_config=image_config, entrypoint=[entrypoint] if entrypoint else None,
        args=list(args) if args else None, env=environment, workdir=workdir, user=user,
        mounts=[_mount(m) for m in mounts], network=network or ("isolated" if publish else "none"),
        labels={labels.RUN: image}, **limits,
    )
    try:
        status = run_foreground(spec, stream=sys.stdout, on_start=_announce if publish else None)
    except ContainerExists:
        # The name is another container's, and so is the directory: it stays.
        raise click.ClickException(f"a container named {container_name} exists already; "
                                   "choose another --name") from None
    except BaseException:
        _remove_state(spec.state_dir)
        raise
    _remove_state(spec.state_dir)
    if status.oom_killed:
        click.echo("container was killed: out of memory", err=True)
    elif status.reason not in ("completed", "failed", "exited") and status.message:
        click.echo(f"container ended: {status.reason}: {status.message}", err=True)
    sys.exit(status.code)


def _remove_state(state_dir: Path) -> None:
    """The container's directory (logs, overlay upper layer) goes with it, unless something is still
    mounted there (then it is left in place, and said)."""
    prefix = str(state_dir.absolute())
    try:
        # The kernel writes a space in a mount point as \040 (and tab, newline, backslash likewise).
        mounts = [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), line.split()[1])
                  for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        mounts = []
    if any(m == prefix or m.startswith(prefix + "/") for m in mounts):
        click.echo(f"warning: {state_dir} is still mounted; left in place", err=True)
        return
    shutil.rmtree(state_dir, ignore_errors=True)


def _announce(handle) -> None:
    if handle.address:
        click.echo(f"container {handle.name} at http://{handle.address}:8080", err=True)

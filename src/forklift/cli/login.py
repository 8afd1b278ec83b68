"""`forklift login` / `forklift logout`: docker-compatible credentials in config.json (or its credsStore).

The password comes from standard input (`--password-stdin`) or a hidden prompt, never from the
command line, and is never printed.
"""

from __future__ import annotations

import sys

import click

from forklift.credentials import dockerconfig
from forklift.reference import DOCKER_HUB, normalize_registry

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin given but standard input held no password")
        return password
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True)
    raise click.UsageError("give the password on standard input with --password-stdin")


@click.command("login")
@click.argument("registry", default=DOCKER_HUB)
@click.option("-u", "--username", help="Registry user name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def login(registry: str, username: str | None, password_stdin: bool) -> None:
    """Save credentials for REGISTRY (default docker.io) in docker's config.json or its credential store."""
    registry = normalize_registry(registry)
    if not username:
        if password_stdin or not sys.stdin.isatty():
            raise click.UsageError("--username is required")
        username = click.prompt("Username")
    password = _read_password(password_stdin)
    _check(registry, username, password)
    where = dockerconfig.login(registry, username, password)
    click.echo(f"Credentials for {username} at {registry} saved in {where}")


def _check(registry: str, username: str, password: str) -> None:
    """Refuse to save credentials the registry rejects."""
    import asyncio

    from forklift.config import load_settings
    from forklift.credentials import Credentials, StaticKeychain
    from forklift.registry import RegistryClient

    async def check() -> None:
        keychain = StaticKeychain(Credentials(username, password), registry)
        async with RegistryClient(registry, keychain=keychain, settings=load_settings(), max_retries=2) as client:
            await client.check_login()

    asyncio.run(check())


@click.command("logout")
@click.argument("registry", default=DOCKER_HUB)
def logout(registry: str) -> None:
    """Remove the saved credentials for REGISTRY (default docker.io)."""
    registry = normalize_registry(registry)
    if dockerconfig.logout(registry):
        click.echo(f"Removed credentials for {registry}")
    else:
        click.echo(f"Not logged in to {registry}")

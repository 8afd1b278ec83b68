"""`forklift registry start|status|stop|password`: a local TLS registry to try things on."""

from __future__ import annotations

import click

from forklift.cli.groups import Group
from forklift.cli.output import emit_json, output_option, print_fields
from forklift.config import forklift_home
from forklift.localregistry import DEFAULT_PORT, DEFAULT_USER

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.


def _user_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value or ":" in value or "\n" in value:  # what an htpasswd file can hold
        raise click.BadParameter(f"{value!r}: a user name is not empty and holds no ':' or newline")
    return value


@click.group(cls=Group)
def registry() -> None:
    """A private registry on this machine (CNCF distribution with TLS and auth) to try forklift on.

    Its CA goes to $FORKLIFT_HOME/certs.d and its user's password is saved as `forklift login` saves
    one, so `forklift images`, jobs and endpoints use it with no flags.
    """


@registry.command("start")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="Port on localhost.")
@click.option("--auth", type=click.Choice(["basic", "token"]), default="basic", show_default=True,
              help="htpasswd basic auth, or bearer tokens from a token server of its own.")
@click.option("--user", default=DEFAULT_USER, show_default=True, callback=_user_name, help="The registry's user.")
def start_command(port: int, auth: str, user: str) -> None:
    """Start the registry in the background; prints its address (the data stays across restarts)."""
    from forklift.localregistry import start

    home = forklift_home()
    state = start(home, port=port, auth=auth, user=user)
    click.echo(f"registry at https://{state.address} ({auth} auth), user {state.user}; its password is saved "
               f"as `forklift login` saves one (`forklift registry password` prints it), its CA in "
               f"{home / 'certs.d' / state.address}", err=True)
    click.echo(state.address)


@registry.command("status")
@output_option
def status_command(output: str) -> None:
    """Whether the registry runs, where, with which auth and user; exits 1 when it does not."""
    from forklift.localregistry import directory, read_state

    home = forklift_home()
    state = read_state(home)
    running = state is not None and state.running
    status = {"Running": running, "Directory": str(directory(home))}
    if state is not None:
        status.update(Address=state.address, Auth=state.auth, User=state.user, Pid=state.pid,
                      TokenServer=f"https://localhost:{state.token_port}/token" if state.token_port else None,
                      TokenServerPid=state.token_pid)
    if output == "json":
        emit_json(status)
    elif running:
        print_fields([("Address", state.address), ("Auth", state.auth), ("User", state.user),
                      ("Pid", str(state.pid)), ("Data", status["Directory"])])
    else:
        click.echo("the local registry is not running (`forklift registry start`)")
    raise SystemExit(0 if running else 1)


@registry.command("stop")
def stop_command() -> None:
    """Stop the registry (its images and the saved password stay for the next start)."""
    from forklift.localregistry import stop

    state = stop(forklift_home())
    click.echo(f"registry on {state.address} stopped" if state else "the local registry was not running", err=True)


@registry.command("password")
def password_command() -> None:
    """Print the registry user's password (for a credentials function or --registryPassword), like
    `aws ecr get-login-password`."""
    from forklift.localregistry import read_state, saved_password

    state = read_state(forklift_home())
    if state is None:
        raise click.ClickException("the local registry has not been started (`forklift registry start`)")
    password = saved_password(state.address, state.user)
    if password is None:
        raise click.ClickException(f"no saved password for {state.user} at {state.address} (a `forklift logout` "
                                   "removed it?): `forklift registry stop && forklift registry start` sets a new one")
    click.echo(password)

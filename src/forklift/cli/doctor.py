"""`forklift doctor`: what killed servers and commands left on this host, and (`--fix`) its removal.

Reports each leftover (what, where, why nothing owns it; `forklift.control.leftovers` decides) and
exits 1 when there is any. `--fix` removes them, but only while it holds the database's lease
itself and no live server is recorded in `$FORKLIFT_HOME/server.json` (a server on another database,
PostgreSQL say, with FORKLIFT_DATABASE_URL not set here): a running `forklift serve` may be starting
a container whose row it has just written, and it sweeps the same leftovers when it starts, so
`--fix` refuses while one runs and says to stop it. Containers are judged by the database only when
it holds forklift's tables: one that does not (not made yet, or empty) is never created here, and a
container in this home is then an error naming FORKLIFT_DATABASE_URL, not a leftover.
"""

from __future__ import annotations

import os
import sys

import click

from forklift.errors import ForkliftError

# The control plane, the runtime and the database lease are imported inside the command: `forklift
# --help` must not pay for them.


@click.command()
@click.option("--fix", is_flag=True, help="Remove every leftover found (refused while a server runs on this home).")
def doctor(fix: bool) -> None:
    """Report what crashed servers and commands left behind; exit 1 when anything is left.

    Containers no job or endpoint owns, network namespaces and leases, overlay mounts, cgroups,
    runtime index entries, content-store leases and provider functions' temporary directories.
    """
    from forklift import dblease, migrations
    from forklift.config import load_settings
    from forklift.control.inference.store import InferenceStore
    from forklift.control.leftovers import NoDatabaseState, find_leftovers, remove_all
    from forklift.control.store import JobStore
    from forklift.runtime.runc import RuncRuntime
    from forklift.serverfile import live_record, record_path

    if os.geteuid() != 0:
        raise ForkliftError("forklift doctor reads runc's state, network namespaces and cgroups, which are "
                            "root's: run it as root (sudo -E forklift doctor)")
    settings = load_settings()
    state = migrations.status(settings.database_url)  # read before anything here creates the database
    has_state = state.exists and (state.revision is not None or state.legacy)
    lease = None
    if fix:
        server = live_record(settings.home)
        if server is not None:
            raise ForkliftError(f"forklift doctor --fix does not touch the host while a forklift server runs on "
                                f"this home (pid {server.pid}, {server.url}, from {record_path(settings.home)}); "
                                "the server removes leftovers itself when it starts: stop it (`forklift server "
                                "stop`) and run `forklift doctor --fix` again")
        try:
            lease = dblease.acquire(settings.database_url, holder=f"forklift doctor pid {os.getpid()}")
        except dblease.ServerActive as exc:
            raise ForkliftError(f"forklift doctor --fix does not touch the host while a forklift server runs on "
                                f"this home's database ({exc}); the server removes leftovers itself when it "
                                "starts: stop it (`forklift server stop`) and run `forklift doctor --fix` "
                                "again") from None
    try:
        runtime = RuncRuntime()
        # A database without forklift's tables (FORKLIFT_DATABASE_URL unset for a server on PostgreSQL)
        # owns nothing: it is not created here, and no container of this home is judged by it.
        jobs = JobStore(settings.database_url) if has_state else None
        inference = InferenceStore(settings.database_url) if has_state else None

        def find() -> list:
            try:
                return find_leftovers(settings, runtime, jobs, inference, database=state.database)
            except NoDatabaseState as exc:
                raise ForkliftError(str(exc)) from None

        found = find()
        for leftover in found:
            click.echo(str(leftover))
        if not fix:
            if found:
                click.echo(f"{len(found)} leftover(s); `forklift doctor --fix` removes them", err=True)
                sys.exit(1)
            click.echo("No leftovers: every container, namespace, mount, cgroup and lease is owned.")
            return
        failed = remove_all(found)
        for leftover, exc in failed:
            click.echo(f"could not remove {leftover}: {exc}", err=True)
        remaining = find()
        for leftover in remaining:
            click.echo(f"still there: {leftover}", err=True)
        click.echo(f"Removed {len(found) - len(failed)} leftover(s).")
        if remaining:
            sys.exit(1)
    finally:
        if lease is not None:
            lease.release()

"""`forklift server start|status|stop`: `forklift serve` in the background for this FORKLIFT_HOME."""

from __future__ import annotations

import time
from datetime import datetime

import click

from forklift.cli.groups import Group
from forklift.cli.output import emit_json, output_option, print_fields
from forklift.config import forklift_home

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.


@click.group(cls=Group)
def server() -> None:
    """The forklift server in the background: start, status, stop.

    `start` runs `forklift serve` detached (output in $FORKLIFT_HOME/server.log) and returns once it
    answers; every command finds it through $FORKLIFT_HOME/server.json. `forklift serve` runs it in the
    foreground instead.
    """


@server.command("start")
@click.option("--port", default=9400, show_default=True, type=click.IntRange(1, 65535), help="Port on 127.0.0.1.")
def start_command(port: int) -> None:
    """Start the server in the background and print its URL (nothing to do when one runs)."""
    from forklift.background import answers, log_path, start
    from forklift.serverfile import live_record

    home = forklift_home()
    record = live_record(home)
    if record is not None and answers(record.url):
        click.echo(f"forklift server already running at {record.url} (pid {record.pid})", err=True)
        click.echo(record.url)
        return
    url = f"http://127.0.0.1:{port}"
    if answers(url):
        raise click.ClickException(f"another server answers at {url} (not this FORKLIFT_HOME's); choose --port")
    pid = start(home, url)
    click.echo(f"forklift server started at {url} (pid {pid}, log {log_path(home)})", err=True)
    click.echo(url)


def _status(home) -> dict:
    from forklift.background import answers, log_path
    from forklift.serverfile import read_record, record_path, same_process

    record = read_record(home)
    if record is None:
        return {"Running": False, "Home": str(home)}
    alive = same_process(record.pid, record.pid_start)
    return {"Running": alive, "Answering": alive and answers(record.url), "Url": record.url, "Pid": record.pid,
            "Started": datetime.fromtimestamp(record.started).astimezone() if record.started else None,
            "Log": record.log or str(log_path(home)), "Home": str(home),
            "Record": str(record_path(home)) + ("" if alive else " (stale: the process is gone)")}


@server.command("status")
@output_option
def status_command(output: str) -> None:
    """Whether this FORKLIFT_HOME's server runs, where, and since when; exits 1 when none runs."""
    status = _status(forklift_home())
    if output == "json":
        emit_json(status)
    elif not status["Running"]:
        click.echo(f"no forklift server is running for FORKLIFT_HOME={status['Home']}")
    else:
        started = status["Started"]
        uptime = f" (up {int(time.time() - started.timestamp())} s)" if started else ""
        print_fields([("Url", status["Url"]), ("Pid", str(status["Pid"])),
                      ("Answering", "yes" if status["Answering"] else ("no", "red")),
                      ("Started", (started.strftime("%Y-%m-%d %H:%M:%S") if started else "-") + uptime),
                      ("Log", status["Log"]), ("Home", status["Home"])])
    raise SystemExit(0 if status["Running"] else 1)


@server.command("stop")
def stop_command() -> None:
    """Stop this FORKLIFT_HOME's server (a graceful stop: running jobs and endpoints keep going and
    the next server picks them up)."""
    from forklift.background import stop

    pid = stop(forklift_home())
    click.echo(f"forklift server (pid {pid}) stopped" if pid else "no forklift server was running", err=True)

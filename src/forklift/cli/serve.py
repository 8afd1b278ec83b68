"""`forklift serve`: the SageMaker-compatible API on one port.

While it runs, `$FORKLIFT_HOME/server.json` holds `{"url", "pid"}` so other commands can find it;
the file is removed at exit. `--port 0` picks a free port (read the URL from server.json).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
from pathlib import Path

import click

from forklift.cli.errors import handle_errors

SERVER_FILE = "server.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(path: Path) -> None:
    """Refuse to start over a running server's file; a stale one is replaced."""
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    pid = current.get("pid") if isinstance(current, dict) else None
    if isinstance(pid, int) and pid != os.getpid() and _pid_alive(pid):
        raise click.ClickException(
            f"a forklift server is already running (pid {pid}, {current.get('url')}); "
            f"stop it, or delete {path} if that process is not forklift")


def _write_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data) + "\n")
    os.replace(tmp, path)


def _remove_if_ours(path: Path) -> None:
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on accepted sockets that say so, and
    # without it every response (headers and body are two writes) waits 40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)  # connections queue from now on, before uvicorn starts accepting
    return sock


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=9400, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--region", help="Region for ARNs when a request is not signed (default: config.toml, else us-east-1).")
@click.option("--account", help="12-digit account id for ARNs (default: config.toml, else 000000000000).")
@handle_errors
def serve(host: str, port: int, region: str | None, account: str | None) -> None:
    """Serve the SageMaker, sagemaker-runtime and CloudWatch Logs APIs for boto3's endpoint_url."""
    import uvicorn

    from forklift.api import build_services, create_app
    from forklift.api.dataplane import protocol_for
    from forklift.config import load_settings

    settings = load_settings()
    region = region or settings.region
    account = account or settings.account
    if not re.fullmatch(r"\d{12}", account):
        raise click.BadParameter("must be 12 digits", param_hint="--account")
    if not re.fullmatch(r"[a-z0-9-]{1,32}", region):
        raise click.BadParameter("not a region name", param_hint="--region")

    server_file = settings.home / SERVER_FILE
    _claim(server_file)
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    url = f"http://{f'[{host}]' if ':' in host else host}:{bound_port}"
    app = create_app(build_services(settings, region, account))
    verbose = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    # A stop waits for requests in flight, but not forever for a client that stalls mid-request.
    config = uvicorn.Config(app, http=protocol_for(app.invoke), log_config=None, access_log=verbose,
                            lifespan="on", log_level=logging.getLogger().getEffectiveLevel(),
                            timeout_graceful_shutdown=30)
    _write_atomic(server_file, {"url": url, "pid": os.getpid()})
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it with the handler it found: make
    # that handler an exit that still runs the cleanup below.
    previous = signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        click.echo(f"forklift serving on {url} (region {region}, account {account})", err=True)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        _remove_if_ours(server_file)
        sock.close()
        signal.signal(signal.SIGTERM, previous)

"""`forklift serve`: the SageMaker-compatible API on one port.

While it runs, `$FORKLIFT_HOME/server.json` records it (`forklift.serverfile`) so other commands can
find it; the file is removed at exit. `--port 0` picks a free port (read the URL from server.json).
It prints a line per job and endpoint state change, and with `-v` a line per request.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import signal
import socket
import sys

import click

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


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


EVENTS_LOGGER = "forklift.events"


def _lease_lost(why: str) -> None:
    """Another server took this database while this one ran (its connection was cut): stop, as a SIGTERM does."""
    logging.getLogger(EVENTS_LOGGER).error("stopping: this server lost its lease on the database: %s", why)
    os.kill(os.getpid(), signal.SIGTERM)


def _configure_logging(verbose: int, log_file: str | None) -> None:
    """State changes always; requests and everything else at INFO with -v, debug with -vv."""
    try:
        stream = open(log_file, "a", buffering=1) if log_file else sys.stderr  # noqa: SIM115 - lives as long as the server
    except OSError as exc:  # a directory that is not there, no permission
        raise click.FileError(str(log_file), hint=f"{exc.strerror} (--log-file)") from None
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s" if not verbose else
                                           "%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING - 10 * min(verbose, 2))
    logging.getLogger(EVENTS_LOGGER).setLevel(logging.INFO)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=9400, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--region", help="Region for ARNs when a request is not signed (default: config.toml, else us-east-1).")
@click.option("--account", help="12-digit account id for ARNs (default: config.toml, else 000000000000).")
@click.option("-v", "--verbose", count=True, help="A line per request (-vv: debug output).")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Append the server's output to this file.")
@click.option("--tls-cert", metavar="PEM", help="Serve HTTPS with this certificate (with --tls-key; or tls_cert in "
                                                 "config.toml).")
@click.option("--tls-key", metavar="PEM", help="The certificate's unencrypted private key.")
@click.option("--runtime", type=click.Choice(["runc", "kubernetes"]),
              help="What runs the containers: runc on this machine, or a Kubernetes cluster (default: runtime in "
                   "config.toml, else runc).")
@click.option("--namespace", help="Kubernetes: the namespace of every object (default: [kubernetes] namespace).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubernetes: the kubeconfig file (default: "
              "in-cluster config in a pod, else KUBECONFIG or ~/.kube/config).")
@click.option("--context", help="Kubernetes: a context of that kubeconfig (default: its current context).")
def serve(host: str, port: int, region: str | None, account: str | None, verbose: int, log_file: str | None,
          tls_cert: str | None, tls_key: str | None, runtime: str | None, namespace: str | None,
          kubeconfig: str | None, context: str | None) -> None:
    """Serve the SageMaker, sagemaker-runtime and CloudWatch Logs APIs for boto3's endpoint_url.

    Prints a line per job and endpoint state change (with -v, a line per request too). Ctrl-C or
    SIGTERM stops it; running jobs and endpoints keep their containers, and the next `forklift serve`
    picks them up. config.toml is read at start: restart the server after changing it. The database
    is upgraded to this forklift's schema first (see `forklift db`). With --tls-cert and --tls-key it
    serves HTTPS; clients trust a private CA through AWS_CA_BUNDLE, as boto3 does.
    """
    import uvicorn

    from forklift import dblease, dburl, migrations
    from forklift.api import build_services, create_app
    from forklift.api.dataplane import protocol_for
    from forklift.api.edge import EdgeLimits
    from forklift.api.wiring import select_backend, server_kube_settings
    from forklift.config import load_settings, read_config_file
    from forklift.credentials.accesskeys import AccessKeys
    from forklift.errors import ForkliftError
    from forklift.serverfile import claim, remove_record_if_ours, write_record
    from forklift.servertls import TlsSetupError, server_tls

    verbose = max(verbose, (logging.WARNING - logging.getLogger().getEffectiveLevel()) // 10)  # or `forklift -v serve`
    _configure_logging(verbose, log_file)
    settings = load_settings()
    limits = EdgeLimits.from_config(read_config_file(settings.home)[1].get("server", {}))
    region = region or settings.region
    account = account or settings.account
    if not re.fullmatch(r"\d{12}", account):
        raise click.BadParameter("must be 12 digits", param_hint="--account")
    if not re.fullmatch(r"[a-z0-9-]{1,32}", region):
        raise click.BadParameter("not a region name", param_hint="--region")

    try:
        tls = server_tls(tls_cert, tls_key, settings.home)
    except TlsSetupError as exc:
        raise click.ClickException(str(exc)) from None
    claim(settings.home)
    # One server per database (forklift.dblease): refused here, before it migrates or binds anything.
    with dblease.acquire(settings.database_url, on_lost=_lease_lost):
        events = logging.getLogger(EVENTS_LOGGER)
        # Before anything opens the database: the whole upgrade is done (or refused) here, and said once.
        upgraded = migrations.upgrade(settings.database_url)
        if upgraded.changed:
            events.info("%s", upgraded)
        keyed = AccessKeys(settings).any()
        if not keyed and not _loopback(host):
            raise click.ClickException(
                f"refusing to listen on {host} with no access key: anyone who reaches the port could run containers "
                "as root. Create a key first (`forklift keys create`), then sign requests with it (AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY), or listen on 127.0.0.1")
        sock = _bind(host, port)
        bound_port = sock.getsockname()[1]
        url = f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{bound_port}"
        try:
            kube = server_kube_settings(settings, namespace=namespace, kubeconfig=kubeconfig, context=context)
            backend = select_backend(settings, runtime, namespace=namespace, kubeconfig=kubeconfig, context=context)
        except ForkliftError as exc:
            sock.close()
            raise click.ClickException(str(exc)) from None
        app = create_app(build_services(settings, region, account, backend, kube, host=host), limits)
        # A stop waits for requests in flight, but not forever for a client that stalls mid-request.
        config = uvicorn.Config(app, http=protocol_for(app.invoke, limits), log_config=None, access_log=verbose > 0,
                                lifespan="on", log_level=logging.getLogger().getEffectiveLevel(),
                                timeout_graceful_shutdown=30, timeout_keep_alive=limits.keep_alive_timeout,
                                ssl_certfile=str(tls.cert) if tls else None, ssl_keyfile=str(tls.key) if tls else None)
        write_record(settings.home, url, log=os.path.abspath(log_file) if log_file else None)
        # uvicorn shuts down gracefully on SIGINT and SIGTERM, then re-raises the signal with the handler
        # it found: make that handler an exit that still runs the cleanup below (not click's "Aborted!").
        previous = {sig: signal.signal(sig, _exit_quietly) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            events.info("forklift serving on %s (region %s, account %s) for FORKLIFT_HOME=%s, database %s; containers "
                        "run on %s", url, region, account, settings.home, dburl.shown(settings.database_url),
                        backend.name)
            if not keyed:
                events.info("no access key exists, so unsigned requests are accepted (on loopback only); once "
                            "`forklift keys create` has made one, every request must be signed with a key")
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            remove_record_if_ours(settings.home)
            sock.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            events.info("forklift server on %s stopped; running jobs and endpoints keep their containers and the "
                        "next `forklift serve` picks them up", url)

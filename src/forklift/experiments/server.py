"""Which forklift server the experiments CLI talks to, starting one when none answers.

The server named as every command finds it (`forklift.serverfile`: FORKLIFT_URL,
AWS_ENDPOINT_URL_SAGEMAKER, then `$FORKLIFT_HOME/server.json`), else `http://127.0.0.1:9400`. When
nothing answers a loopback URL's `GET /ping`, `forklift serve` is started in the background for the
current FORKLIFT_HOME (`forklift.background`; `forklift server stop` ends it).

Experiments keep their credentials and workspaces under FORKLIFT_HOME, so the server must use the same
home; a server that this home does not record is used with a warning.
"""

from __future__ import annotations

from collections.abc import Callable

from forklift.background import ServerUnavailable, answers, log_path, start
from forklift.config import Settings
from forklift.jsonclient import JsonClient
from forklift.serverfile import DEFAULT_URL, NoServer, read_record, record_path, server_url

__all__ = ["ServerUnavailable", "clients", "find_server"]


def find_server(settings: Settings, say: Callable[[str], None]) -> str:
    """The URL of a server answering for this FORKLIFT_HOME, started if needed."""
    try:
        url, _ = server_url(settings.home)
    except NoServer:
        url = DEFAULT_URL
    record = read_record(settings.home)
    if answers(url):
        if record is None or record.url.rstrip("/") != url:
            say(f"warning: the forklift server at {url} is not recorded in {record_path(settings.home)}; "
                "experiments need a server on the same FORKLIFT_HOME to find their credentials and workspaces")
        return url
    pid = start(settings.home, url)
    say(f"No forklift server answered at {url}: started one in the background for FORKLIFT_HOME={settings.home} "
        f"(pid {pid}, log {log_path(settings.home)}; `forklift server stop` stops it).")
    return url


def clients(url: str, settings: Settings):
    """`sagemaker` and `logs` clients on the server (its JSON protocol, without boto3's start-up)."""
    return JsonClient("sagemaker", url), JsonClient("logs", url)

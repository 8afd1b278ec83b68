"""Which forklift server the experiments CLI talks to, starting one when none answers.

`FORKLIFT_URL` when set; else the server recorded in `$FORKLIFT_HOME/server.json` when it answers; else
`http://127.0.0.1:9400`. When nothing answers a loopback URL's `GET /ping`, `forklift serve` is started
in the background for the current FORKLIFT_HOME (its own session, output in `$FORKLIFT_HOME/server.log`).

Experiments keep their credentials and workspaces under FORKLIFT_HOME, so the server must use the same
home; a server that this home does not record is used with a warning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from forklift.config import Settings

DEFAULT_URL = "http://127.0.0.1:9400"
START_TIMEOUT = 60.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ServerUnavailable(RuntimeError):
    pass


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{url.rstrip('/')}/ping", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def recorded_url(settings: Settings) -> str | None:
    try:
        return json.loads((settings.home / "server.json").read_text())["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_server(settings: Settings, say: Callable[[str], None]) -> str:
    """The URL of a server answering for this FORKLIFT_HOME, started if needed."""
    url = os.environ.get("FORKLIFT_URL")
    recorded = recorded_url(settings)
    if not url:
        url = recorded if recorded and answers(recorded) else DEFAULT_URL
    url = url.rstrip("/")
    if answers(url):
        if recorded != url:
            say(f"warning: the forklift server at {url} is not recorded in {settings.home / 'server.json'}; "
                "experiments need a server on the same FORKLIFT_HOME to find their credentials and workspaces")
        return url
    start_server(settings, url)
    say(f"No forklift server answered at {url}: started one in the background for FORKLIFT_HOME={settings.home} "
        f"(pid {_recorded_pid(settings)}, log {settings.home / 'server.log'}).")
    return url


def start_server(settings: Settings, url: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme != "http" or host not in LOOPBACK:
        raise ServerUnavailable(f"no forklift server answers at {url}; start `forklift serve` there "
                                "(only a loopback http:// URL is started automatically)")
    log_path = settings.home / "server.log"
    env = dict(os.environ, FORKLIFT_HOME=str(settings.home))
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        process = subprocess.Popen([sys.executable, "-m", "forklift", "serve", "--host", host, "--port", str(port)],
                                   stdin=devnull, stdout=log, stderr=log, env=env, start_new_session=True,
                                   close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1500:].strip()
            raise ServerUnavailable(f"forklift serve exited with status {process.returncode} "
                                    f"(log {log_path}):\n{tail}")
        if answers(url, timeout=1.0):
            return
        time.sleep(0.2)
    raise ServerUnavailable(f"forklift serve did not answer at {url} within {START_TIMEOUT:g} s (log {log_path})")


def _recorded_pid(settings: Settings) -> str:
    try:
        return str(json.loads((settings.home / "server.json").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return "?"


def clients(url: str, settings: Settings):
    """boto3 `sagemaker` and `logs` clients on the server (dummy AWS credentials: the server is local)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 2}, connect_timeout=10, read_timeout=120)
    common = {"endpoint_url": url, "region_name": settings.region, "aws_access_key_id": "forklift",
              "aws_secret_access_key": "forklift", "config": config}
    return boto3.client("sagemaker", **common), boto3.client("logs", **common)

"""`forklift serve` in the background for one FORKLIFT_HOME: started, checked, stopped.

`forklift server start` and the experiments CLI (when no server answers) start it in its own
session, its output appended to `$FORKLIFT_HOME/server.log`; `forklift server stop` ends it by the pid
its server.json records. Standard library only, so the commands that use it start fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from forklift.errors import ForkliftError
from forklift.serverfile import live_record, same_process
from forklift.servertls import client_context

START_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0  # the server waits up to 30 s for requests in flight
LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOG_FILE = "server.log"


class ServerUnavailable(ForkliftError, RuntimeError):
    pass


def _direct() -> urllib.request.OpenerDirector:
    # A proxy in http_proxy would answer for a loopback server (or not at all): never through one. An
    # https:// server is verified as the other commands verify it (AWS_CA_BUNDLE, ca_bundle).
    return urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                       urllib.request.HTTPSHandler(context=client_context()))


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a forklift (or SageMaker-like) server answers `GET /ping` at `url`."""
    try:
        with _direct().open(f"{url.rstrip('/')}/ping", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(path: Path, size: int = 1500) -> str:
    """The last `size` bytes of a log that may have grown large."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - size))
            return log.read().decode(errors="replace").strip()
    except OSError:
        return ""


def log_path(home: Path) -> Path:
    return home / LOG_FILE


def start(home: Path, url: str) -> int:
    """Start `forklift serve` for `home` listening at `url` (a loopback http:// URL) and wait until it
    answers; returns its pid."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http" or host not in LOOPBACK:
        raise ServerUnavailable(f"no forklift server answers at {url}; start `forklift serve` there "
                                "(only a loopback http:// URL is started automatically)")
    port = parts.port or 80
    log = log_path(home)
    env = dict(os.environ, FORKLIFT_HOME=str(home))
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        process = subprocess.Popen([sys.executable, "-m", "forklift", "serve", "--host", host, "--port", str(port),
                                    "--log-file", str(log)],
                                   stdin=devnull, stdout=out, stderr=out, env=env, start_new_session=True,
                                   close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            record = live_record(home)
            if record is not None and answers(url):  # another command started one at the same moment
                return record.pid
            raise ServerUnavailable(f"forklift serve exited with status {process.returncode} (log {log}):\n"
                                    f"{log_tail(log)}")
        if answers(url, timeout=1.0):
            return process.pid
        time.sleep(0.2)
    process.terminate()
    raise ServerUnavailable(f"forklift serve did not answer at {url} within {START_TIMEOUT:g} s, and was stopped "
                            f"(log {log})")


def stop(home: Path, timeout: float = STOP_TIMEOUT) -> int | None:
    """Stop the server recorded for `home` (SIGTERM: a graceful stop); its pid, or None when none runs."""
    record = live_record(home)  # the recorded server, not whatever got its pid later
    if record is None:
        return None
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return record.pid
    except PermissionError:
        raise ServerUnavailable(f"the forklift server (pid {record.pid}) belongs to another user: stop it as "
                                "that user") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not same_process(record.pid, record.pid_start):
            return record.pid
        time.sleep(0.1)
    raise ServerUnavailable(f"the forklift server (pid {record.pid}) did not stop within {timeout:g} s; "
                            f"`kill -9 {record.pid}` ends it")


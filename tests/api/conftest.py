"""API fixtures: a real `forklift serve` subprocess, and in-process apps under uvicorn in a thread."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import pytest
import uvicorn
from botocore.config import Config

from fixtures.postgres import Database, Databases, remember
from forklift.api import ApiServices, create_app
from forklift.api.edge import EdgeLimits

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "AKIDFORKLIFTTEST", "aws_secret_access_key": "forklift-test-secret"}
# No retries: a 5xx must surface at once, and a test must not wait for backoff.
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)


@dataclass
class Server:
    url: str
    home: Path
    process: subprocess.Popen
    database: Database = field(default_factory=lambda: Database("sqlite"))

    def client(self, service: str, region: str = REGION):
        return boto3.client(service, endpoint_url=self.url, region_name=region, config=NO_RETRY, **CREDENTIALS)


def start_server(home: Path, *args: str, database: Database | None = None, timeout: float = 20) -> Server:
    """`forklift serve` on `home` and `database` (default: the home's SQLite file)."""
    database = database or Database("sqlite")
    remember(home, database)  # the CLI helpers given only the home find its database
    env = database.apply(dict(os.environ, FORKLIFT_HOME=str(home), AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
                              AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"], AWS_DEFAULT_REGION=REGION))
    process = subprocess.Popen([sys.executable, "-m", "forklift", "serve", "--port", "0", *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server_file = home / "server.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"forklift serve exited with {process.returncode}: {process.stderr.read()}")
        try:
            info = json.loads(server_file.read_text())
            return Server(info["url"], home, process, database)
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("forklift serve did not write server.json in time")


def stop_server(server: Server) -> str:
    """SIGTERM, wait, and return what the server wrote on stderr."""
    server.process.terminate()
    try:
        _, stderr = server.process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        _, stderr = server.process.communicate()
    return stderr


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> Iterator[Server]:
    """One `forklift serve` per engine (SQLite, then PostgreSQL) for the session, on a free port,
    FORKLIFT_HOME in tmp."""
    with databases.fresh() as database:
        running = start_server(tmp_path_factory.mktemp("forklift-serve-home"), database=database)
        yield running
        stop_server(running)


@pytest.fixture(scope="session")
def sagemaker(server: Server):
    return server.client("sagemaker")


@pytest.fixture
def launch(tmp_path: Path, databases: Databases) -> Iterator[Callable[..., Server]]:
    """Start another server (own FORKLIFT_HOME under tmp_path, own database on this pass's engine) with
    extra CLI args; stopped after the test."""
    started: list[Server] = []
    with ExitStack() as databases_made:

        def start(*args: str) -> Server:
            home = tmp_path / f"home-{len(started)}"
            home.mkdir()
            started.append(start_server(home, *args, database=databases_made.enter_context(databases.fresh())))
            return started[-1]

        yield start
        for running in started:
            if running.process.poll() is None:
                stop_server(running)


@pytest.fixture
def stop() -> Callable[[Server], str]:
    return stop_server


@dataclass
class InProcessServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, service: str, region: str = REGION):
        return boto3.client(service, endpoint_url=self.url, region_name=region, config=NO_RETRY, **CREDENTIALS)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def serve_app() -> Iterator[Callable[..., InProcessServer]]:
    """Run `create_app(services, limits)` under uvicorn in a thread on a free port (lifespan hooks included)."""
    running: list[InProcessServer] = []

    def start(services: ApiServices, limits: EdgeLimits | None = None) -> InProcessServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(create_app(services, limits), log_config=None, access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("in-process server did not start")
            time.sleep(0.01)
        running.append(InProcessServer(f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread))
        return running[-1]

    yield start
    for server in running:
        server.stop()

"""The registry to try things on: `forklift registry start|status|stop|password`.

A CNCF distribution registry (Debian's `docker-registry`) on `localhost:PORT` with TLS from a CA of
its own, trusted through `$FORKLIFT_HOME/certs.d/localhost:PORT/ca.crt`, and basic (htpasswd) or
token auth. Its user's password is saved as `forklift login` saves one (docker's config.json or its
credential store), so pulls, pushes and `forklift images` find it without flags; it is never printed
unless asked for (`forklift registry password`, like `aws ecr get-login-password`).

Everything lives in `$FORKLIFT_HOME/registry/`: the PKI, the htpasswd file, the registry's data
(kept across stop and start) and `state.json` (pids and ports, no secret).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from forklift.background import log_tail
from forklift.errors import ForkliftError
from forklift.serverfile import process_start, same_process, write_json_atomically

DEFAULT_PORT = 5443
DEFAULT_USER = "forklift"
ISSUER, SERVICE = "forklift-local-registry-issuer", "forklift-local-registry"
STOP_TIMEOUT = 10.0


class RegistryProblem(ForkliftError, RuntimeError):
    """The local registry cannot be started, found or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class RegistryState:
    port: int
    auth: str  # "basic" or "token"
    user: str
    pid: int
    token_pid: int | None = None
    token_port: int | None = None
    started: float | None = None
    # When each process began (clock ticks since boot): a pid reused after a crash or a reboot is not ours.
    pid_start: int | None = None
    token_pid_start: int | None = None

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def processes(self) -> list[tuple[int, int | None]]:
        """(pid, start) of each process recorded so far (the registry's pid is 0 until it has started)."""
        found = [(self.pid, self.pid_start), (self.token_pid, self.token_pid_start)]
        return [(pid, start) for pid, start in found if pid]

    @property
    def running(self) -> bool:
        return self.pid > 0 and all(same_process(pid, start) for pid, start in self.processes())


def directory(home: Path) -> Path:
    return home / "registry"


def read_state(home: Path) -> RegistryState | None:
    try:
        return RegistryState(**json.loads((directory(home) / "state.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_state(home: Path, state: RegistryState) -> None:
    write_json_atomically(directory(home) / "state.json", asdict(state))


def saved_password(address: str, user: str) -> str | None:
    """The password `forklift registry start` saved for `address`, if docker's config still has it."""
    from forklift.credentials.dockerconfig import DockerConfigKeychain  # here: `registry status` needs none of it

    found = DockerConfigKeychain().resolve(address, "")
    return found.password if found.username == user and found.password else None


def port_free(port: int) -> bool:
    """Whether 127.0.0.1:`port` can be bound (nothing listens there; connections of a server that just
    stopped, waiting out TIME_WAIT, do not count, as they do not stop the servers from binding)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(home: Path, port: int = DEFAULT_PORT, auth: str = "basic", user: str = DEFAULT_USER) -> RegistryState:
    """Start the registry (and its token server) in the background; the running one when it already
    runs with these settings."""
    # here: cryptography (the PKI) loads for a start only, not for `registry status` or `stop`
    from forklift.credentials import dockerconfig
    from forklift.devregistry import LocalRegistry, TokenAuth, create_pki, free_port, install_ca, write_htpasswd

    current = read_state(home)
    if current is not None and current.running:
        if (current.port, current.auth, current.user) == (port, auth, user):
            return current
        raise RegistryProblem(f"the local registry already runs on {current.address} with {current.auth} auth: "
                              "`forklift registry stop` first")
    if current is not None:  # half of it died (or the machine restarted): end what is left of it
        stop(home)
    if not port_free(port):
        raise RegistryProblem(f"port {port} on 127.0.0.1 is in use: choose another with --port")
    work = directory(home)
    work.mkdir(parents=True, exist_ok=True)
    pki = create_pki(work / "pki")
    address = f"localhost:{port}"
    password = saved_password(address, user) or secrets.token_urlsafe(18)
    state = RegistryState(port=port, auth=auth, user=user, pid=0, started=time.time())
    try:
        token_auth = None
        if auth == "token":  # the token server checks passwords against an htpasswd file, as the registry would
            write_htpasswd(work / "htpasswd", {user: password})
            token_port = free_port()
            token_pid = _start_token_server(work, token_port)
            state = replace(state, token_pid=token_pid, token_port=token_port,
                            token_pid_start=process_start(token_pid))
            _write_state(home, state)
            token_auth = TokenAuth(realm=f"https://localhost:{token_port}/token", service=SERVICE, issuer=ISSUER,
                                   root_cert_bundle=pki.ca_cert)
        registry = LocalRegistry(work, pki, port=port, htpasswd={user: password} if auth == "basic" else None,
                                 token_auth=token_auth)
        try:
            registry.start()
        except RuntimeError as exc:
            raise RegistryProblem(str(exc)) from None
        state = replace(state, pid=registry.pid, pid_start=process_start(registry.pid))
        _write_state(home, state)  # recorded first: whatever fails next, `stop` can end it
        install_ca(pki, home / "certs.d", address)
        dockerconfig.login(address, user, password)
    except BaseException:
        stop(home)
        raise
    return state


def _start_token_server(work: Path, port: int) -> int:
    config = work / "tokenserver.json"
    config.write_text(json.dumps({"port": port, "pki": str(work / "pki"), "htpasswd": str(work / "htpasswd"),
                                  "issuer": ISSUER, "service": SERVICE}))
    with open(work / "tokenserver.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "forklift.tokenserver", str(config)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RegistryProblem(f"the token server exited with status {process.returncode}:\n"
                                  f"{log_tail(work / 'tokenserver.log')}")
        if not port_free(port):
            return process.pid
        time.sleep(0.05)
    _terminate(process.pid, process_start(process.pid))
    raise RegistryProblem("the token server did not listen within 10 s")


def _terminate(pid: int, start: int | None) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT; only while `pid` is still the process that began at `start`."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 2.0)):
        if not same_process(pid, start):
            return
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):  # gone, or another user's process by now
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and same_process(pid, start):
            time.sleep(0.05)


def stop(home: Path) -> RegistryState | None:
    """Stop the registry and its token server; their data and the saved password stay for the next start."""
    state = read_state(home)
    if state is None:
        return None
    for pid, start in state.processes():
        _terminate(pid, start)
    (directory(home) / "state.json").unlink(missing_ok=True)
    return state

"""A local CNCF distribution registry for `forklift demo` and the test suite.

Everything here runs real components: a small PKI made with `cryptography`, an htpasswd file hashed
with bcrypt, and Debian's `docker-registry` binary (distribution 2.8) serving TLS on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

START_TIMEOUT = 10.0


# --- PKI ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def create_pki(directory: Path, hostnames: Sequence[str] = ("localhost", "127.0.0.1")) -> Pki:
    """A CA and a server certificate for `hostnames`, reusing whatever files already exist."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        directory=directory,
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
    )
    if not (pki.ca_cert.exists() and pki.ca_key.exists()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forklift dev registry CA")])
        ca_cert = (
            _builder(name, name, ca_key.public_key(), days=3650)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(pki.ca_key, ca_key)
        pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    if not (pki.server_cert.exists() and pki.server_key.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue_certificate(pki, hostnames[0], key.public_key(), hostnames=hostnames)
        _write_key(pki.server_key, key)
        pki.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pki


def issue_certificate(
    pki: Pki,
    common_name: str,
    public_key: ec.EllipticCurvePublicKey,
    *,
    hostnames: Sequence[str] = (),
    days: int = 825,
) -> x509.Certificate:
    """A leaf certificate signed by the PKI's CA: a TLS server cert when `hostnames` are given,
    otherwise a signing cert (a token server's `x5c` leaf)."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _builder(subject, ca_cert.subject, public_key, days=days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
    )
    if hostnames:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in hostnames]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _builder(subject, issuer, public_key, *, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Backdated so a slightly skewed clock (VMs, containers) does not reject a fresh cert.
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(path, pem)


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: a chmod after writing would leave a window where others can read.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply when the file already existed


def install_ca(pki: Pki, certs_dir: Path, registry: str) -> Path:
    """Trust the PKI's CA for `registry` (host[:port]) in a docker `certs.d` directory."""
    target = Path(certs_dir) / registry / "ca.crt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pki.ca_cert, target)
    return target


def write_htpasswd(path: Path, users: Mapping[str, str], *, rounds: int = 10) -> None:
    """An htpasswd file with bcrypt hashes (`$2b$`, which distribution accepts).

    distribution checks the hash on every request, so the cost is kept moderate; tests pass a
    lower `rounds` to stay fast."""
    for user in users:
        if not user or ":" in user or "\n" in user:
            raise ValueError(f"invalid htpasswd user name {user!r}")
    lines = [
        f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()}\n"
        for user, password in users.items()
    ]
    _write_private(Path(path), "".join(lines).encode())


# --- the registry process -------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenAuth:
    realm: str
    service: str
    issuer: str
    root_cert_bundle: Path


class LocalRegistry:
    """CNCF distribution (`docker-registry serve`) on 127.0.0.1 with TLS, and htpasswd basic auth
    or token auth (or none)."""

    def __init__(
        self,
        workdir: Path,
        pki: Pki,
        *,
        port: int = 0,
        htpasswd: Mapping[str, str] | None = None,
        token_auth: TokenAuth | None = None,
        binary: str = "docker-registry",
        htpasswd_rounds: int = 10,
    ) -> None:
        if htpasswd is not None and token_auth is not None:
            raise ValueError("a registry uses either htpasswd or token auth, not both")
        self.workdir = Path(workdir)
        self.pki = pki
        self._auto_port = port == 0
        self.port = port or free_port()
        self.htpasswd = dict(htpasswd) if htpasswd is not None else None
        self.token_auth = token_auth
        self.binary = binary
        self.htpasswd_rounds = htpasswd_rounds
        self.config_path = self.workdir / "config.yml"
        self.log_path = self.workdir / "registry.log"
        self._process: subprocess.Popen | None = None
        self._log_offset = 0

    @property
    def address(self) -> str:
        """host:port as written in image references; `localhost` matches the server cert's SAN."""
        return f"localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> LocalRegistry:
        if self._process is not None and self._process.poll() is None:
            return self
        executable = shutil.which(self.binary)
        if executable is None:
            raise RuntimeError(
                f"registry binary {self.binary!r} not found: install Debian's docker-registry package"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        # An automatically chosen port can be taken between probing and binding; try another one.
        for attempt in range(3):
            self._launch(executable)
            try:
                self._wait_ready()
                return self
            except _PortTaken:
                self.stop()
                if not self._auto_port or attempt == 2:
                    raise RuntimeError(self._failure(f"port {self.port} is in use")) from None
                self.port = free_port()
        raise AssertionError("unreachable")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _launch(self, executable: str) -> None:
        self.config_path.write_text(json.dumps(self._config(), indent=2))  # JSON is valid YAML
        # REGISTRY_* variables override the config file; a stray one must not change our registry.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [executable, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C meant for the caller is not delivered twice
            )

    def _config(self) -> dict:
        config: dict = {
            "version": "0.1",
            "log": {"level": "info", "fields": {"service": "registry"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "data")},
                "delete": {"enabled": True},
            },
            "http": {
                "addr": f"127.0.0.1:{self.port}",
                "secret": secrets.token_hex(16),
                "tls": {"certificate": str(self.pki.server_cert), "key": str(self.pki.server_key)},
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
        }
        if self.htpasswd is not None:
            path = self.workdir / "htpasswd"
            write_htpasswd(path, self.htpasswd, rounds=self.htpasswd_rounds)
            config["auth"] = {"htpasswd": {"realm": "forklift-dev-registry", "path": str(path)}}
        elif self.token_auth is not None:
            t = self.token_auth
            config["auth"] = {
                "token": {
                    "realm": t.realm,
                    "service": t.service,
                    "issuer": t.issuer,
                    "rootcertbundle": str(t.root_cert_bundle),
                }
            }
        return config

    def _wait_ready(self) -> None:
        assert self._process is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                if "address already in use" in self._log_since_launch():
                    raise _PortTaken
                raise RuntimeError(self._failure(f"exited with status {self._process.returncode}"))
            try:
                httpx.get(f"{self.url}/v2/", verify=context, timeout=1.0)
                return  # any status: 401 is the normal answer of an authenticating registry
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(self._failure(f"did not answer on {self.url}/v2/ within {START_TIMEOUT:.0f} s"))

    def _log_since_launch(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _failure(self, what: str) -> str:
        tail = "\n".join(self._log_since_launch().splitlines()[-30:])
        return f"docker-registry {what} (config {self.config_path}, log {self.log_path}):\n{tail}"


class _PortTaken(Exception):
    pass


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (another process may take it before it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

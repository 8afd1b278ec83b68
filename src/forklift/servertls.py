"""HTTPS for `forklift serve`: the server's certificate and key, and what the CLI trusts when calling it.

    forklift serve --tls-cert server.crt --tls-key server.key     (or tls_cert / tls_key in config.toml)

The certificate is usually self-signed or from a private CA, so clients must be told to trust it, the
way boto3 is: `AWS_CA_BUNDLE=/path/ca.pem` (boto3 reads the same variable), else `ca_bundle` in
config.toml, else the system's trust store. Standard library (and config) only: every command that
talks to a server may import this.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from forklift.config import ConfigError, forklift_home, read_config_file
from forklift.errors import ForkliftError

CA_BUNDLE_VARIABLE = "AWS_CA_BUNDLE"
CA_BUNDLE_KEY = "ca_bundle"


class TlsSetupError(ForkliftError):
    """The server's certificate or key, or the client's CA bundle, cannot be used; the message says which."""


@dataclass(frozen=True)
class ServerTls:
    cert: Path
    key: Path


def server_tls(cert: str | None, key: str | None, home: Path) -> ServerTls | None:
    """The certificate and key to serve HTTPS with (the flags, else config.toml), checked now: a path
    that is not there, a key that does not match, an encrypted key are errors before the port opens."""
    origin = "--tls-cert/--tls-key"
    if cert is None and key is None:
        path, data = read_config_file(home)
        cert, key = data.get("tls_cert"), data.get("tls_key")
        origin = f"tls_cert/tls_key in {path}"
    if cert is None and key is None:
        return None
    if not cert or not key:
        raise TlsSetupError(f"{origin}: give both the certificate and its private key, or neither")
    tls = ServerTls(Path(cert).expanduser().absolute(), Path(key).expanduser().absolute())
    for what, file in (("certificate", tls.cert), ("private key", tls.key)):
        if not file.is_file():
            raise TlsSetupError(f"{origin}: the {what} {file} is not a readable file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # A password callback that answers nothing: an encrypted key is refused instead of prompting.
        context.load_cert_chain(tls.cert, tls.key, password=lambda: b"")
    except ssl.SSLError as exc:
        raise TlsSetupError(f"{origin}: {tls.cert} and {tls.key} are not a PEM certificate and its unencrypted "
                            f"private key ({exc.reason or exc})") from None
    except OSError as exc:
        raise TlsSetupError(f"{origin}: cannot read {exc.filename or tls.cert}: {exc.strerror}") from None
    return tls


def ca_bundle() -> str | None:
    """The CA file a client trusts for a forklift server: AWS_CA_BUNDLE, else `ca_bundle` in config.toml."""
    value = os.environ.get(CA_BUNDLE_VARIABLE, "").strip()
    origin = CA_BUNDLE_VARIABLE
    if not value:
        path, data = read_config_file(forklift_home(), check=False)
        value = data.get(CA_BUNDLE_KEY) or ""
        origin = f"{CA_BUNDLE_KEY} in {path}"
        if not isinstance(value, str):
            raise ConfigError(f"{origin} must be the path of a PEM CA file")
    if not value:
        return None
    if not os.path.isfile(value):
        raise TlsSetupError(f"{origin}: the CA bundle {value} is not a file")
    return value


def client_context() -> ssl.SSLContext:
    """Verification as boto3 does it: the CA bundle named (see ca_bundle), else the system's."""
    cafile = ca_bundle()
    try:
        return ssl.create_default_context(cafile=cafile)
    except ssl.SSLError as exc:
        raise TlsSetupError(f"the CA bundle {cafile} holds no usable PEM certificate ({exc.reason or exc})") from None

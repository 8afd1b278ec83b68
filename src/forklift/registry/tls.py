"""TLS trust per registry: the system store plus docker-style `certs.d/<host[:port]>/` directories.

In a registry's directory, `*.crt` files are extra CA certificates and a `*.cert` + `*.key` pair is a
client certificate (the layout docker, containerd and skopeo share).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path


def registry_cert_dirs(registry: str, certs_dirs: Sequence[Path]) -> list[Path]:
    """Existing certificate directories for `registry`, most specific root first."""
    names = [registry]
    # docker also accepts the bare host for a registry on the default port
    if registry.endswith(":443"):
        names.append(registry[: -len(":443")])
    found = []
    for root in certs_dirs:
        for name in names:
            candidate = root / name
            if candidate.is_dir():
                found.append(candidate)
    return found


def ssl_context(registry: str, certs_dirs: Sequence[Path], *, verify: bool = True) -> ssl.SSLContext:
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context()
    for directory in registry_cert_dirs(registry, certs_dirs):
        for ca in sorted(directory.glob("*.crt")):
            context.load_verify_locations(cafile=str(ca))
        for cert in sorted(directory.glob("*.cert")):
            key = cert.with_suffix(".key")
            if key.exists():
                context.load_cert_chain(str(cert), str(key))
    return context


def certs_hint(registry: str, certs_dirs: Sequence[Path]) -> str:
    """Where a user should put the CA certificate of `registry`."""
    return str(certs_dirs[0] / registry / "ca.crt")

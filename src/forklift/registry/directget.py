"""A fast path for blob bodies: http.client with 1 MiB reads instead of httpx's per-TLS-record iteration.

Measured here on four 80 MiB blobs over loopback TLS: ~0.9 s against ~1.8 s through httpx, because
http.client's buffered reader fills a large buffer in C while httpx walks every 16 KiB TLS record
through Python. Only plain GETs of blobs take this path, with an Authorization header the auth flow
already holds; anything unusual (a proxy, a 401, an error status) goes back through httpx.
"""

from __future__ import annotations

import http.client
import os
import ssl
from dataclasses import dataclass

import httpx

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def proxies_configured() -> bool:
    """httpx honours proxy variables and http.client does not: with a proxy, stay on httpx."""
    return any(os.environ.get(name) for name in _PROXY_VARIABLES)


@dataclass
class DirectResponse:
    status: int
    headers: httpx.Headers
    _response: http.client.HTTPResponse
    _connection: http.client.HTTPConnection

    def readinto(self, buffer: memoryview) -> int:
        return self._response.readinto(buffer)

    def close(self) -> None:
        self._connection.close()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def direct_get(url: httpx.URL, headers: dict[str, str], context: ssl.SSLContext, timeout: float) -> DirectResponse:
    """GET `url`, following redirects; Authorization is dropped as soon as the origin changes."""
    first = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        sent = dict(headers)
        if _origin(url) != first:
            sent.pop("Authorization", None)
        connection: http.client.HTTPConnection
        if url.scheme == "https":
            connection = http.client.HTTPSConnection(url.host, url.port, context=context, timeout=timeout)
        else:
            connection = http.client.HTTPConnection(url.host, url.port, timeout=timeout)
        try:
            target = url.raw_path.decode("ascii")
            connection.request("GET", target, headers=sent)
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        location = response.getheader("location")
        if response.status in _REDIRECTS and location:
            connection.close()
            url = url.join(location)
            continue
        return DirectResponse(response.status, httpx.Headers(response.getheaders()), response, connection)
    raise http.client.HTTPException(f"more than {MAX_REDIRECTS} redirects for {url.copy_with(query=None)}")

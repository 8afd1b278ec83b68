"""Read-only objects at `https://` (and `http://`) URLs, e.g. a ModelDataUrl served by a web server.

A URL is one object: listing it gives that object when it exists, and every write is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

import httpx

from forklift.storage.atomic import atomic_path
from forklift.storage.base import ObjectInfo, PrefixTransfers
from forklift.storage.errors import NoSuchKey, ReadOnlyStore, StorageError

_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class HttpsObjects(PrefixTransfers):
    def __repr__(self) -> str:
        return "HttpsObjects()"

    def _get(self, client: httpx.Client, method: str, uri: str) -> httpx.Response:
        try:
            response = client.send(client.build_request(method, uri), stream=True)
        except httpx.HTTPError as exc:
            raise StorageError(f"{uri}: {exc}") from None
        if response.status_code == 404:
            response.close()
            raise NoSuchKey(uri)
        if response.status_code >= 400:
            response.close()
            raise StorageError(f"{uri}: HTTP {response.status_code}")
        return response

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        with httpx.Client(timeout=_TIMEOUT, follow_redirects=True) as client:
            try:
                response = self._get(client, "HEAD", prefix_uri)
            except NoSuchKey:
                return []
            response.close()
        size = int(response.headers.get("content-length", 0))
        key = prefix_uri.split("://", 1)[1].partition("/")[2]
        return [ObjectInfo(key, size, _last_modified(response), prefix_uri)]

    def download(self, uri: str, dest_path: Path) -> Path:
        dest_path = Path(dest_path)
        with httpx.Client(timeout=_TIMEOUT, follow_redirects=True) as client:
            response = self._get(client, "GET", uri)
            try:
                with atomic_path(dest_path) as tmp, open(tmp, "wb") as out:
                    out.writelines(response.iter_bytes(1 << 20))
            except httpx.HTTPError as exc:
                raise StorageError(f"{uri}: {exc}") from None
            finally:
                response.close()
        return dest_path

    def exists(self, uri: str) -> bool:
        return bool(self.list(uri))

    def open_read(self, uri: str) -> BinaryIO:
        client = httpx.Client(timeout=_TIMEOUT, follow_redirects=True)
        try:
            return _ResponseReader(client, self._get(client, "GET", uri))
        except BaseException:
            client.close()
            raise

    def upload(self, src_path: Path, uri: str) -> None:
        raise ReadOnlyStore(f"{uri}: https:// URLs are read only")

    def upload_dir(self, src_dir: Path, prefix_uri: str) -> list[str]:
        raise ReadOnlyStore(f"{prefix_uri}: https:// URLs are read only")

    def copy(self, src_uri: str, dst_uri: str) -> None:
        raise ReadOnlyStore(f"{dst_uri}: https:// URLs are read only")

    def delete(self, uri: str) -> None:
        raise ReadOnlyStore(f"{uri}: https:// URLs are read only")


class _ResponseReader:
    """A file-like `read()` over a streamed response body, closing the client with it."""

    def __init__(self, client: httpx.Client, response: httpx.Response) -> None:
        self._client, self._response = client, response
        self._chunks = response.iter_bytes(1 << 16)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        self._response.close()
        self._client.close()

    def __enter__(self) -> _ResponseReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_modified(response: httpx.Response) -> datetime:
    header = response.headers.get("last-modified")
    if header:
        try:
            return parsedate_to_datetime(header)
        except (TypeError, ValueError):
            pass
    return datetime.now(tz=UTC)

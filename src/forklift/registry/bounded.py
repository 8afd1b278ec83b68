"""Reading a registry's (or token server's) answer into memory, never more than a limit.

A body is refused as soon as Content-Length says it is too big, and reading stops once the bytes
pass the limit when the length is absent or lies, so a hostile server costs at most the limit plus
one network read. Bodies are asked for uncompressed (`Accept-Encoding: identity`) and read raw: a
server that compresses anyway is decompressed here with the same bound, as httpx's decoders have
none (one small gzip read could expand to gigabytes).
"""

from __future__ import annotations

import zlib

import httpx

from forklift.registry.errors import RegistryServerError

IDENTITY = {"Accept-Encoding": "identity"}
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # manifests and indexes, as distribution itself allows
MAX_CONFIG_BYTES = 8 * 1024 * 1024  # image configs (their history can be long; still bounded)
MAX_BODY_BYTES = 4 * 1024 * 1024  # any other answer read whole: errors, tokens, tag lists, pings


class ResponseTooLarge(RegistryServerError):
    """A registry or token server sent (or announced) more bytes than forklift reads for that answer."""


def _too_large(what: str, limit: int, registry: str | None) -> ResponseTooLarge:
    return ResponseTooLarge(f"{what} from {registry or 'the server'} is larger than {limit >> 20} MiB, the most "
                            "forklift reads; it is refused", registry=registry)


def _announced(response: httpx.Response, what: str, limit: int, registry: str | None) -> None:
    if response.request.method == "HEAD":  # the length of what a GET would send; a HEAD answer has no body
        return
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large(what, limit, registry)


def _decoded(response: httpx.Response, raw: bytes, what: str, limit: int, registry: str | None) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise RegistryServerError(f"{what} from {registry or 'the server'} came with Content-Encoding {encoding}, "
                                  "which forklift did not ask for", registry=registry)
    try:
        out = zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(raw, limit + 1)  # 32: gzip or zlib header
    except zlib.error as exc:
        raise RegistryServerError(f"{what} from {registry or 'the server'} is not valid {encoding}: {exc}",
                                  registry=registry) from None
    if len(out) > limit:
        raise _too_large(what, limit, registry)
    return out


def _complete(response: httpx.Response, body: bytes) -> httpx.Response:
    """`response` as read: its `.content` is `body`. httpx itself reads every response an auth flow
    moves past (`aread`), and a response counts as read exactly when `_content` is set; there is no
    public way to hand it bytes read another way."""
    response._content = body
    return response


async def read_limited(response: httpx.Response, limit: int, *, what: str,
                       registry: str | None) -> httpx.Response:
    """`response` read into memory (at most `limit` bytes, else ResponseTooLarge) and closed."""
    try:
        _announced(response, what, limit, registry)
        chunks, size = [], 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > limit:
                raise _too_large(what, limit, registry)
            chunks.append(chunk)
    finally:
        await response.aclose()
    return _complete(response, _decoded(response, b"".join(chunks), what, limit, registry))


def read_limited_sync(response: httpx.Response, limit: int, *, what: str, registry: str | None) -> httpx.Response:
    """`read_limited` for the synchronous client."""
    try:
        _announced(response, what, limit, registry)
        chunks, size = [], 0
        for chunk in response.iter_raw():
            size += len(chunk)
            if size > limit:
                raise _too_large(what, limit, registry)
            chunks.append(chunk)
    finally:
        response.close()
    return _complete(response, _decoded(response, b"".join(chunks), what, limit, registry))

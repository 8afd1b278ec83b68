"""An async client for the OCI Distribution / Docker Registry HTTP API V2, one registry per instance.

Callers get ready answers: verified manifests, verified blobs on disk, typed errors. Authentication
lives in `auth.RegistryAuth`; trust in `tls`; retry policy in `retry`; how long each wait may
last in `timeouts`. `on_retry` hears, in a sentence, each time an outage is being waited out.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx

from forklift import __version__
from forklift.config import Settings, load_settings
from forklift.credentials import AnonymousKeychain, Keychain
from forklift.reference import DOCKER_HUB, DOCKER_HUB_API_HOST, Reference
from forklift.registry import tls
from forklift.registry.auth import LOGIN_CHECK, TOKEN_REQUEST, RegistryAuth
from forklift.registry.bounded import (
    IDENTITY,
    MAX_BODY_BYTES,
    MAX_MANIFEST_BYTES,
    ResponseTooLarge,
    read_limited,
)
from forklift.registry.download import BlobDownload
from forklift.registry.errors import (
    DigestMismatch,
    PlatformNotFound,
    RegistryError,
    RegistryServerError,
    RegistryStalled,
    RegistryUnreachable,
    TokenServerFailed,
    TooManyRequests,
    UnsupportedManifest,
    error_for_response,
    error_for_transport,
    short_reason,
)
from forklift.registry.manifest import (
    ACCEPT,
    DEFAULT_PLATFORM,
    DOCKER_SCHEMA1,
    IMAGE_TYPES,
    INDEX_TYPES,
    Descriptor,
    Manifest,
    Platform,
    media_type_of,
    platform_of,
    select_platform,
)
from forklift.registry.retry import Attempts, RetryPolicy
from forklift.registry.scopes import EXTRA_SCOPES
from forklift.registry.timeouts import MIN_BLOB_RATE, Timeouts
from forklift.registry.tokens import TokenCache

log = logging.getLogger("forklift.registry")

CHUNK = 1024 * 1024  # upload read size
Progress = Callable[[int], None]
OnRetry = Callable[[str], None]  # may be called from a download thread
Body = bytes | AsyncIterator[bytes]  # a request body, made afresh for each attempt


@dataclass(frozen=True)
class ResolvedImage:
    reference: Reference
    manifest: Manifest  # the image manifest for the chosen platform
    index: Manifest | None  # the index it was chosen from, when the reference named one
    platform: Platform | None

    @property
    def digest(self) -> str:
        return self.manifest.digest


class RegistryClient:
    def __init__(
        self,
        registry: str,
        *,
        keychain: Keychain | None = None,
        settings: Settings | None = None,
        token_cache: TokenCache | None = None,
        max_retries: int | None = None,
        on_retry: OnRetry | None = None,
    ):
        """`max_retries` caps the retries within the budget (`registry_retry_seconds`), for a
        caller that wants a quick answer rather than an outage waited out."""
        self.registry = registry
        self.settings = settings or load_settings()
        self.retry = RetryPolicy(budget=self.settings.registry_retry_seconds, max_retries=max_retries)
        self.timeouts = Timeouts.from_settings(self.settings)
        self.on_retry = on_retry
        keychain = keychain or AnonymousKeychain()
        self._insecure = self.settings.is_insecure(registry)
        self._auth = RegistryAuth(registry, lambda repo: keychain.resolve(registry, repo or ""), token_cache)
        host = DOCKER_HUB_API_HOST if registry == DOCKER_HUB else registry
        self._base = httpx.URL(f"https://{host}")
        self._ssl = tls.ssl_context(registry, self.settings.certs_dirs, verify=not self._insecure)
        self._timeout = self.timeouts.client_default()
        self._sync_http: httpx.Client | None = None
        self._http = httpx.AsyncClient(
            verify=self._ssl,
            auth=self._auth,
            timeout=self._timeout,
            follow_redirects=True,
            headers={"User-Agent": f"forklift/{__version__}", **IDENTITY},  # bodies are read raw: `bounded`
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        self._pinged: asyncio.Lock | None = None
        self._ping_done = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._sync_http is not None:
            self._sync_http.close()

    # -- plumbing -----------------------------------------------------------------------------
    def _url(self, path: str) -> httpx.URL:
        return self._base.join(path)

    def _username(self, repository: str | None) -> str | None:
        return self._auth.username_for(repository)

    async def ping(self) -> None:
        """GET /v2/: learns the scheme (HTTP only for insecure registries) and the auth challenge."""
        if self._ping_done:
            return
        if self._pinged is None:
            self._pinged = asyncio.Lock()
        async with self._pinged:
            if self._ping_done:
                return
            try:
                response = await self._send("GET", "/v2/", what="the registry API")
            except RegistryError:
                if not self._insecure or self._base.scheme == "http":
                    raise
                self._base = self._base.copy_with(scheme="http")
                response = await self._send("GET", "/v2/", what="the registry API")
            if response.status_code not in (200, 401):
                raise error_for_response(response, registry=self.registry, what="the registry API")
            self._ping_done = True

    async def check_login(self) -> None:
        """Prove the credentials work (Basic, or a token from the token server), as `docker login` does."""
        await self.ping()
        response = await self._send("GET", "/v2/", what="the registry API", extensions={LOGIN_CHECK: True})
        if response.status_code != 200:
            raise await self._fail(response, what="the registry API", repository=None)

    async def _send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        content_factory: Callable[[], Body] | None = None,
        extensions: dict[str, object] | None = None,
        limit: int = MAX_BODY_BYTES,
        body: str | None = None,
    ) -> httpx.Response:
        """Send, waiting out connection errors, timeouts and 408/429/5xx (honouring Retry-After)
        within the retry budget; the answer is read into memory, at most `limit` bytes of a
        success (named `body` in the error when it is larger) and MAX_BODY_BYTES of an error."""
        target = url if isinstance(url, httpx.URL) else self._url(url)
        attempts = self.retry.attempts()
        sending = (headers or {}).get("Content-Length", "")  # an upload's body goes out before the head comes
        head_deadline = self.timeouts.head_deadline(int(sending) if sending.isdigit() else 0)
        while True:
            request = self._http.build_request(
                method, target, headers=headers, content=content_factory() if content_factory else None,
                extensions={**(extensions or {}), **self.timeouts.for_head()},
            )
            try:
                async with _deadline(head_deadline, self._too_slow(what, "the head of its answer")):
                    response = await self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                failure = self.timeouts.explain(exc, "first_byte")
                if attempts.retries_error(failure):
                    await self._wait(attempts, short_reason(failure), what)
                    continue
                raise self._transport_error(failure, what, attempts) from None
            except TokenServerFailed as exc:
                if attempts.retries_status(exc.response.status_code):
                    await self._wait(attempts, f"its token server answered {exc.response.status_code}", what,
                                     exc.response)
                    continue
                raise TokenServerFailed(f"{exc}{attempts.given_up()}", registry=self.registry,
                                        response=exc.response) from None
            _log_rate_limit(self.registry, response)
            if attempts.retries_status(response.status_code):
                await response.aclose()
                await self._wait(attempts, f"answered {response.status_code}", what, response)
                continue
            self.timeouts.for_body(response)
            length = response.headers.get("content-length", "")
            size = min(int(length), limit) if length.isdigit() else limit
            try:
                async with _deadline(self.timeouts.body_deadline(size), self._too_slow(what, "the body of its answer")):
                    return await self._read(response, limit, what, body or f"the answer for {what}")
            except httpx.TransportError as exc:
                failure = self.timeouts.explain(exc, "read")
                # Only a request that changes nothing is sent again once the registry has answered it.
                if method in ("GET", "HEAD") and attempts.retries_error(failure):
                    await self._wait(attempts, short_reason(failure), what)
                    continue
                raise self._transport_error(failure, what, attempts) from None

    async def _read(self, response: httpx.Response, limit: int, what: str, body: str) -> httpx.Response:
        if response.is_success:
            return await read_limited(response, limit, what=body, registry=self.registry)
        try:
            return await read_limited(response, MAX_BODY_BYTES, what=f"the error for {what}", registry=self.registry)
        except ResponseTooLarge:  # the status still says what failed; the oversized body is dropped
            return httpx.Response(response.status_code, headers=response.headers, request=response.request)

    def _too_slow(self, what: str, part: str) -> Callable[[float], RegistryError]:
        def error(seconds: float) -> RegistryError:
            return RegistryStalled(
                f"{self.registry} is too slow answering {what}: {part} did not arrive within {seconds:.1f} s, the time "
                "allowed (registry_connect_timeout_seconds, registry_first_byte_timeout_seconds and "
                f"registry_read_timeout_seconds, plus {MIN_BLOB_RATE >> 10} KiB/s of body); check the registry "
                "or the network to it, or raise these settings in config.toml", registry=self.registry)
        return error

    async def _wait(self, attempts: Attempts, why: str, what: str, response: httpx.Response | None = None) -> None:
        delay = attempts.delay(response)
        self._retrying(why, what, attempts, delay)
        await asyncio.sleep(delay)

    def _retrying(self, why: str, what: str, attempts: Attempts, delay: float) -> None:
        """Say (log, and `on_retry`) that a failure is being waited out; thread-safe."""
        log.info("%s for %s: %s; retrying in %.1f s, %.0f s of registry_retry_seconds left",
                 self.registry, what, why, delay, attempts.left())
        if self.on_retry is not None:
            self.on_retry(f"registry {self.registry} unavailable ({why}); retrying, "
                          f"up to {attempts.left():.0f} s left")

    async def _fail(self, response: httpx.Response, *, what: str, repository: str | None) -> RegistryError:
        error = error_for_response(response, registry=self.registry, what=what, username=self._username(repository))
        if response.status_code == 429:
            return TooManyRequests(str(error), registry=self.registry)
        return error

    # -- manifests ----------------------------------------------------------------------------
    async def head_manifest(self, repository: str, reference: str) -> Descriptor:
        """Resolve a tag to a digest without a GET (a HEAD does not count as a pull on Docker Hub)."""
        await self.ping()
        what = f"{repository}:{reference}"
        response = await self._send("HEAD", f"/v2/{repository}/manifests/{reference}", what=what,
                                    headers={"Accept": ACCEPT})
        if response.status_code != 200:
            raise await self._fail(response, what=what, repository=repository)
        digest = response.headers.get("docker-content-digest")
        if not digest:
            manifest = await self.get_manifest(repository, reference)
            return Descriptor(manifest.media_type, manifest.digest, len(manifest.raw))
        media_type = response.headers.get("content-type", "").split(";")[0]
        return Descriptor(media_type, digest, int(response.headers.get("content-length", 0)))

    async def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest and verify it: by digest against the digest asked for, by tag against the header."""
        await self.ping()
        what = f"{repository}@{reference}" if ":" in reference else f"{repository}:{reference}"
        response = await self._send("GET", f"/v2/{repository}/manifests/{reference}", what=f"manifest {what}",
                                    headers={"Accept": ACCEPT}, limit=MAX_MANIFEST_BYTES, body=f"manifest {what}")
        if response.status_code != 200:
            raise await self._fail(response, what=what, repository=repository)
        raw = response.content
        actual = "sha256:" + hashlib.sha256(raw).hexdigest()
        expected = reference if ":" in reference else response.headers.get("docker-content-digest")
        if expected and expected.startswith("sha256:") and expected != actual:
            raise DigestMismatch(
                f"manifest {what} from {self.registry} has digest {actual}, expected {expected}", registry=self.registry
            )
        media_type = media_type_of(raw, response.headers.get("content-type"))
        if media_type in DOCKER_SCHEMA1:
            raise UnsupportedManifest(
                f"{what} on {self.registry} is a Docker schema 1 manifest, which is deprecated and not supported; "
                "push the image again with a current client", registry=self.registry)
        if media_type not in INDEX_TYPES + IMAGE_TYPES:
            raise UnsupportedManifest(f"{what} on {self.registry} has unsupported manifest type '{media_type}'",
                                      registry=self.registry)
        return Manifest(raw=raw, media_type=media_type, digest=actual)

    async def resolve(self, reference: Reference, platform: Platform | None = None) -> ResolvedImage:
        """The image manifest `reference` names, choosing from an index by platform (default linux/amd64)."""
        wanted = platform or DEFAULT_PLATFORM
        top = await self.get_manifest(reference.repository, reference.identifier)
        if not top.is_index:
            return ResolvedImage(reference, top, None, None)
        try:
            chosen = select_platform(top, wanted)
        except LookupError as exc:
            raise PlatformNotFound(f"{reference}: {exc}; choose one with --platform", registry=self.registry) from None
        manifest = await self.get_manifest(reference.repository, chosen.digest)
        if manifest.is_index:
            raise UnsupportedManifest(f"{reference}: nested index {chosen.digest} is not supported",
                                      registry=self.registry)
        return ResolvedImage(reference, manifest, top, platform_of(chosen))

    async def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        await self.ping()
        what = f"{repository}:{reference}"
        response = await self._send(
            "PUT", f"/v2/{repository}/manifests/{reference}", what=what,
            headers={"Content-Type": media_type}, content_factory=lambda: raw,
        )
        if response.status_code not in (200, 201):
            raise await self._fail(response, what=what, repository=repository)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        announced = response.headers.get("docker-content-digest")
        if announced and announced != digest:
            raise DigestMismatch(f"{self.registry} stored manifest {what} as {announced}, expected {digest}",
                                 registry=self.registry)
        return digest

    async def list_tags(self, repository: str) -> list[str]:
        """All tags, following `Link: <...>; rel="next"` pagination."""
        await self.ping()
        tags: list[str] = []
        url: httpx.URL | None = self._url(f"/v2/{repository}/tags/list")
        while url is not None:
            response = await self._send("GET", url, what=f"tags of {repository}")
            if response.status_code != 200:
                raise await self._fail(response, what=repository, repository=repository)
            tags.extend(response.json().get("tags") or [])
            next_link = response.links.get("next", {}).get("url")
            url = self._url(next_link) if next_link else None
        return tags

    # -- blobs --------------------------------------------------------------------------------
    async def get_blob_bytes(self, repository: str, descriptor: Descriptor, limit: int = 64 * 1024 * 1024) -> bytes:
        """A small blob (an image config) in memory, verified."""
        await self.ping()
        if descriptor.size > limit:
            raise RegistryServerError(f"blob {descriptor.digest} is too large to read into memory",
                                      registry=self.registry)
        what = f"blob {descriptor.digest} in {repository}"
        response = await self._send("GET", f"/v2/{repository}/blobs/{descriptor.digest}", what=what,
                                    limit=descriptor.size, body=what)
        if response.status_code != 200:
            raise await self._fail(response, what=what, repository=repository)
        _verify(response.content, descriptor, self.registry)
        return response.content

    async def fetch_blob(self, repository: str, descriptor: Descriptor, dest: Path,
                         progress: Progress | None = None) -> None:
        """Stream a blob into `dest`, resuming from the bytes already there; verify size and sha256.

        On a digest mismatch `dest` is deleted and DigestMismatch raised; nothing unverified survives.
        """
        await self.ping()
        what = f"blob {descriptor.digest} in {repository}"
        # A cancelled task leaves its thread running: the thread stops at its next chunk or retry instead.
        cancelled = threading.Event()
        download = BlobDownload(
            http=self._blob_http(), url=self._url(f"/v2/{repository}/blobs/{descriptor.digest}"),
            descriptor=descriptor, registry=self.registry, policy=self.retry, timeouts=self.timeouts,
            to_error=lambda response: error_for_response(response, registry=self.registry, what=what,
                                                         username=self._username(repository)),
            transport_error=lambda exc, attempts: self._transport_error(exc, f"blob {descriptor.digest}", attempts),
            retrying=lambda why, attempts, delay: self._retrying(why, f"blob {descriptor.digest}", attempts, delay),
            cached_authorization=lambda url: self._auth.cached_authorization("GET", url),
            ssl_context=self._ssl, cancelled=cancelled,
        )

        def advance(n: int) -> None:
            if cancelled.is_set():
                raise _DownloadCancelled
            if progress is not None:
                progress(n)

        try:
            await asyncio.to_thread(download.run, dest, advance)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def _blob_http(self) -> httpx.Client:
        if self._sync_http is None:
            self._sync_http = httpx.Client(
                verify=self._ssl, auth=self._auth, timeout=self._timeout, follow_redirects=True,
                headers={"User-Agent": f"forklift/{__version__}", **IDENTITY},
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            )
        return self._sync_http

    def _transport_error(self, exc: BaseException, what: str, attempts: Attempts | None = None) -> RegistryError:
        error = error_for_transport(exc, registry=self.registry, what=what,
                                    certs_hint=tls.certs_hint(self.registry, self.settings.certs_dirs))
        token_host = _token_server(exc)
        if token_host is not None and isinstance(error, RegistryUnreachable):
            error = RegistryUnreachable(f"cannot reach {token_host}, the token server of registry {self.registry}: "
                                        f"{short_reason(exc)}", registry=self.registry)
        if attempts is None or not attempts.given_up():
            return error
        return type(error)(f"{error}{attempts.given_up()}; check that the registry is up, or raise these "
                           "settings in config.toml", registry=self.registry)

    async def blob_exists(self, repository: str, digest: str) -> bool:
        await self.ping()
        what = f"blob {digest} in {repository}"
        response = await self._send("HEAD", f"/v2/{repository}/blobs/{digest}", what=what)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise await self._fail(response, what=what, repository=repository)

    async def upload_blob(
        self, repository: str, descriptor: Descriptor, path: Path, *, mount_from: str | None = None,
        chunk_size: int | None = None, progress: Progress | None = None,
    ) -> str:
        """Make `descriptor` exist in `repository`. Returns 'exists', 'mounted' or 'uploaded'.

        Skips blobs the registry has, tries a cross-repository mount when a source repository is
        known, then uploads monolithically or in chunks of `chunk_size` bytes.
        """
        if await self.blob_exists(repository, descriptor.digest):
            return "exists"
        what = f"upload of {descriptor.digest} to {repository}"
        start = self._url(f"/v2/{repository}/blobs/uploads/")
        extensions: dict[str, object] | None = None
        if mount_from and mount_from != repository:
            start = start.copy_merge_params({"mount": descriptor.digest, "from": mount_from})
            extensions = {EXTRA_SCOPES: [f"repository:{mount_from}:pull"]}
        response = await self._send("POST", start, what=what, extensions=extensions)
        if response.status_code == 201:
            return "mounted"
        if response.status_code != 202:
            raise await self._fail(response, what=what, repository=repository)
        location = self._location(response, what)
        if chunk_size and descriptor.size > chunk_size:
            location = await self._upload_chunks(repository, location, path, descriptor.size, chunk_size, what,
                                                 progress)

            def empty_body() -> Body:
                return b""

            body_factory: Callable[[], Body] = empty_body
            length = 0
        else:
            body_factory, length = (lambda: _read_file(path, 0, descriptor.size, progress)), descriptor.size
        final = location.copy_merge_params({"digest": descriptor.digest})
        response = await self._send("PUT", final, what=what, content_factory=body_factory,
                                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)})
        if response.status_code not in (201, 204):
            raise await self._fail(response, what=what, repository=repository)
        announced = response.headers.get("docker-content-digest")
        if announced and announced != descriptor.digest:
            raise DigestMismatch(f"{self.registry} stored {descriptor.digest} as {announced}", registry=self.registry)
        return "uploaded"

    async def _upload_chunks(self, repository: str, location: httpx.URL, path: Path, size: int, chunk_size: int,
                             what: str, progress: Progress | None) -> httpx.URL:
        for start in range(0, size, chunk_size):
            end = min(start + chunk_size, size) - 1
            response = await self._send(
                "PATCH", location, what=what,
                content_factory=functools.partial(_read_file, path, start, end - start + 1, progress),
                headers={"Content-Type": "application/octet-stream", "Content-Range": f"{start}-{end}",
                         "Content-Length": str(end - start + 1)},
            )
            if response.status_code != 202:
                raise await self._fail(response, what=what, repository=repository)
            location = self._location(response, what)
        return location

    def _location(self, response: httpx.Response, what: str) -> httpx.URL:
        location = response.headers.get("location")
        if not location:
            raise RegistryServerError(f"{self.registry} gave no upload location for {what}", registry=self.registry)
        # join keeps the query string (distribution's `_state`), which the PUT must send back.
        return response.request.url.join(location)


class _DownloadCancelled(Exception):  # noqa: N818 - never escapes: its task is cancelled already
    """Raised in a download thread whose task was cancelled."""


def _verify(data: bytes, descriptor: Descriptor, registry: str) -> None:
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if len(data) != descriptor.size or actual != descriptor.digest:
        raise DigestMismatch(f"blob {descriptor.digest} from {registry} has digest {actual} and {len(data)} bytes",
                             registry=registry)


async def _read_file(path: Path, offset: int, length: int, progress: Progress | None) -> AsyncIterator[bytes]:
    with open(path, "rb") as source:
        source.seek(offset)
        remaining = length
        while remaining > 0:
            block = source.read(min(CHUNK, remaining))
            if not block:
                break
            remaining -= len(block)
            if progress:
                progress(len(block))
            yield block


@asynccontextmanager
async def _deadline(seconds: float, too_slow: Callable[[float], RegistryError]) -> AsyncIterator[None]:
    """The block within `seconds` in all, else `too_slow(seconds)`: the waits between reads alone let a
    server that drips its answer hold a request for ever."""
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            yield
    except TimeoutError:
        if scope.expired():
            raise too_slow(seconds) from None
        raise


def _token_server(exc: BaseException | None) -> str | None:
    """host[:port] of the token server, when the request that failed was the auth flow's token request."""
    while exc is not None and not isinstance(exc, httpx.RequestError):
        exc = exc.__cause__
    if exc is None:
        return None
    try:
        request = exc.request
    except RuntimeError:  # no request attached
        return None
    return request.url.netloc.decode("ascii") if request.extensions.get(TOKEN_REQUEST) else None


def _log_rate_limit(registry: str, response: httpx.Response) -> None:
    remaining = response.headers.get("ratelimit-remaining")
    if remaining is not None:
        log.info("%s rate limit: remaining %s of %s", registry, remaining, response.headers.get("ratelimit-limit", "?"))

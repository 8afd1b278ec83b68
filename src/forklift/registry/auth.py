"""The registry authentication dance as an `httpx.Auth` flow.

    request ──► 401 + WWW-Authenticate ──► Basic: resend with credentials
                                       └─► Bearer: token request (POST OAuth2 grant, or GET) ──► resend with token

Once a registry's challenge is known, later requests are authorized up front (cached token per scope
set), so streamed upload bodies are sent once. The flow yields the token requests itself, so the same
code serves the sync and async clients and is testable without a network.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncGenerator, Callable, Generator

import httpx

from forklift.credentials import Credentials
from forklift.registry import scopes as scope_utils
from forklift.registry.bounded import IDENTITY, MAX_BODY_BYTES, read_limited, read_limited_sync
from forklift.registry.challenge import Challenge, parse_response_challenges
from forklift.registry.errors import AuthenticationFailed, RegistryServerError, TokenServerFailed
from forklift.registry.tokens import Token, TokenCache, token_from_response

TOKEN_REQUEST = "forklift.token_request"
# A login check: authenticate even a request that needs no scope, as `docker login` does.
LOGIN_CHECK = "forklift.login_check"
CLIENT_ID = "forklift"
TOKEN_ANSWER = "the token server's answer"
# Token endpoints that do not speak the OAuth2 POST flow answer one of these; fall back to GET.
_POST_UNSUPPORTED = {400, 404, 405, 501}

Flow = Generator[httpx.Request, httpx.Response, None]


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class RegistryAuth(httpx.Auth):
    def __init__(self, registry: str, credentials_for: Callable[[str | None], Credentials],
                 cache: TokenCache | None = None):
        self.registry = registry
        self._credentials_for = credentials_for
        self._cache = cache or TokenCache()
        # Shared by the async client (event loop) and the blob client (download threads): read and
        # written under the lock. The token cache has its own.
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._post_unsupported: set[str] = set()

    @property
    def challenge(self) -> Challenge | None:
        """The challenge the registry last answered with; None until it asks for authentication."""
        with self._lock:
            return self._challenge

    def _learn(self, challenge: Challenge) -> None:
        with self._lock:
            self._challenge = challenge

    def _posts_unsupported(self, realm: str) -> bool:
        with self._lock:
            return realm in self._post_unsupported

    def _mark_post_unsupported(self, realm: str) -> None:
        with self._lock:
            self._post_unsupported.add(realm)

    def username_for(self, repository: str | None) -> str | None:
        return self._credentials_for(repository).username

    def cached_authorization(self, method: str, url: httpx.URL) -> tuple[bool, str | None]:
        """(known, header) for a request, without any network: known is False when a token must be fetched first."""
        challenge = self.challenge
        if challenge is None:
            return True, None  # the registry has not asked for authentication
        repository = scope_utils.repository_of(url.path)
        credentials = self._credentials_for(repository)
        if challenge.scheme == "basic":
            if credentials.username and credentials.password:
                return True, basic_header(credentials.username, credentials.password)
            return True, None
        if credentials.registry_token:
            return True, f"Bearer {credentials.registry_token}"
        if not challenge.realm:
            return False, None
        token = self._cache.get(TokenCache.key(challenge.realm, challenge.service,
                                               scope_utils.scopes_for(method, url.path)))
        return (True, f"Bearer {token.value}") if token else (False, None)

    # -- the flow ---------------------------------------------------------------------------
    def auth_flow(self, request: httpx.Request) -> Flow:
        if request.extensions.get(TOKEN_REQUEST):
            yield request
            return
        repository = scope_utils.repository_of(request.url.path)
        credentials = self._credentials_for(repository)
        needed = scope_utils.scopes_for(
            request.method, request.url.path, request.extensions.get(scope_utils.EXTRA_SCOPES, ())
        )
        challenge = self.challenge
        if challenge is not None and (needed or challenge.scheme == "basic"):
            yield from self._authorize(request, challenge, needed, credentials, fresh=False)
        response = yield request
        if response.status_code != 401:
            return
        chosen = _pick(parse_response_challenges(response.headers))
        if chosen is None:
            return
        self._learn(chosen)
        if chosen.scheme == "basic" and (credentials.is_anonymous or not credentials.password):
            return
        if chosen.scheme == "bearer":
            needed = scope_utils.merge(needed + chosen.scopes)
            if not needed and not request.extensions.get(LOGIN_CHECK):
                return  # a ping: learning the challenge is all it is for
        yield from self._authorize(request, chosen, needed, credentials, fresh=True)
        yield request

    def _authorize(self, request: httpx.Request, challenge: Challenge, scopes: list[str],
                   credentials: Credentials, *, fresh: bool) -> Flow:
        if challenge.scheme == "basic":
            if credentials.username and credentials.password:
                request.headers["Authorization"] = basic_header(credentials.username, credentials.password)
            return
        if credentials.registry_token:
            request.headers["Authorization"] = f"Bearer {credentials.registry_token}"
            return
        realm = challenge.realm
        if not realm:
            raise RegistryServerError(f"{self.registry} sent a Bearer challenge without a realm",
                                      registry=self.registry)
        key = TokenCache.key(realm, challenge.service, scopes)
        token = None if fresh else self._cache.get(key)
        if token is None:
            token = yield from self._fetch_token(realm, challenge, scopes, credentials,
                                                 request.extensions.get("timeout"))
            self._cache.put(key, token)
        request.headers["Authorization"] = f"Bearer {token.value}"

    # -- token endpoint ------------------------------------------------------------------------
    def _fetch_token(self, realm: str, challenge: Challenge, scopes: list[str], credentials: Credentials,
                     timeout: object = None) -> Generator[httpx.Request, httpx.Response, Token]:
        """`timeout`: the registry request's own waits, which the token request keeps (httpx gives a
        request an auth flow sends no timeout of its own: a silent token server would hang it)."""
        use_post = bool(credentials.identity_token) or (
            bool(credentials.username and credentials.password) and not self._posts_unsupported(realm)
        )
        if use_post:
            response = yield _waiting(self._post_token_request(realm, challenge, scopes, credentials), timeout)
            if response.status_code in _POST_UNSUPPORTED and not credentials.identity_token:
                self._mark_post_unsupported(realm)
                use_post = False
        if not use_post:
            response = yield _waiting(self._get_token_request(realm, challenge, scopes, credentials), timeout)
        return self._parse_token(response, credentials)

    def _post_token_request(self, realm: str, challenge: Challenge, scopes: list[str],
                            credentials: Credentials) -> httpx.Request:
        form = {"service": challenge.service or "", "scope": " ".join(scopes), "client_id": CLIENT_ID}
        if credentials.identity_token:
            form.update(grant_type="refresh_token", refresh_token=credentials.identity_token)
        else:
            form.update(grant_type="password", username=credentials.username or "", password=credentials.password or "")
        return httpx.Request("POST", realm, data=form, headers=IDENTITY, extensions={TOKEN_REQUEST: True})

    def _get_token_request(self, realm: str, challenge: Challenge, scopes: list[str],
                           credentials: Credentials) -> httpx.Request:
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(("scope", s) for s in scopes)
        headers: dict[str, str] = dict(IDENTITY)
        if credentials.username and credentials.password:
            params.append(("account", credentials.username))
            headers["Authorization"] = basic_header(credentials.username, credentials.password)
        url = httpx.URL(realm).copy_merge_params(params)
        return httpx.Request("GET", url, headers=headers, extensions={TOKEN_REQUEST: True})

    def _parse_token(self, response: httpx.Response, credentials: Credentials) -> Token:
        if response.status_code in (401, 403):
            who = credentials.username or "anonymous"
            raise AuthenticationFailed(
                f"authentication to {self.registry} failed for user {who}: {response.status_code} from token server",
                registry=self.registry,
            )
        if response.status_code != 200:
            raise TokenServerFailed(f"token server for {self.registry} answered {response.status_code}",
                                    registry=self.registry, response=response)
        try:
            return token_from_response(json.loads(response.content))
        except ValueError as exc:
            raise RegistryServerError(f"token server for {self.registry} sent a bad answer: {exc}",
                                      registry=self.registry) from None

    # -- reading bodies, bounded: token answers and the 401s the flow moves past (the final one stays streamed) --
    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self.auth_flow(request)
        request = next(flow)
        while True:
            response = yield request
            if request.extensions.get(TOKEN_REQUEST):
                read_limited_sync(response, MAX_BODY_BYTES, what=TOKEN_ANSWER, registry=self.registry)
            try:
                request = flow.send(response)
            except StopIteration:
                break
            if not response.is_stream_consumed:  # a 401 the flow answers: httpx would read it whole
                read_limited_sync(response, MAX_BODY_BYTES, what="a challenge", registry=self.registry)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self.auth_flow(request)
        request = next(flow)
        while True:
            response = yield request
            if request.extensions.get(TOKEN_REQUEST):
                await read_limited(response, MAX_BODY_BYTES, what=TOKEN_ANSWER, registry=self.registry)
            try:
                request = flow.send(response)
            except StopIteration:
                break
            if not response.is_stream_consumed:  # a 401 the flow answers: httpx would read it whole
                await read_limited(response, MAX_BODY_BYTES, what="a challenge", registry=self.registry)


def _pick(challenges: list[Challenge]) -> Challenge | None:
    """Prefer Bearer over Basic when a registry offers both."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def _waiting(request: httpx.Request, timeout: object) -> httpx.Request:
    if isinstance(timeout, dict):
        request.extensions = {**request.extensions, "timeout": dict(timeout)}
    return request

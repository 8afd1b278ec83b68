"""Which credentials for this registry and repository?

Every feature asks one question of a `Keychain`: `resolve(registry, repository)`. Sources (explicit
flags, docker's config.json, provider functions, cloud helpers) are keychains; a chain tries them in
order. This layer knows nothing about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Credentials:
    """One way to authenticate to a registry. Secrets are kept out of repr()."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)  # OAuth2 refresh token (docker `identitytoken`)
    registry_token: str | None = field(default=None, repr=False)  # ready-made bearer (docker `registrytoken`)

    @property
    def is_anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so log and message scrubbers know what to hide."""
        return tuple(s for s in (self.password, self.identity_token, self.registry_token) if s)


ANONYMOUS = Credentials()


@runtime_checkable
class Keychain(Protocol):
    def resolve(self, registry: str, repository: str) -> Credentials:
        """Credentials for `registry` (host[:port], docker.io for Docker Hub) and `repository`."""
        ...


class AnonymousKeychain:
    def resolve(self, registry: str, repository: str) -> Credentials:
        return ANONYMOUS


class StaticKeychain:
    """Credentials given explicitly, for one registry or for any."""

    def __init__(self, credentials: Credentials, registry: str | None = None):
        self._credentials = credentials
        self._registry = registry

    def resolve(self, registry: str, repository: str) -> Credentials:
        if self._registry is None or self._registry == registry:
            return self._credentials
        return ANONYMOUS


class KeychainChain:
    """Tries keychains in order; the first non-anonymous answer wins."""

    def __init__(self, *keychains: Keychain):
        self._keychains = keychains

    def resolve(self, registry: str, repository: str) -> Credentials:
        for keychain in self._keychains:
            found = keychain.resolve(registry, repository)
            if not found.is_anonymous:
                return found
        return ANONYMOUS

"""Which credentials for this registry and repository?

Every feature asks one question of a `Keychain`: `resolve(registry, repository)`. Sources are keychains;
`chain.default_keychain` tries them in this order and the first answer wins:

1. explicit credentials of the job, experiment or model (CLI flags; Gradient-style `--registryUsername`/
   `--registryPassword`, kept encrypted for the job's lifetime by `secrets.SecretStore`);
2. a credentials-provider function named by a Lambda-style ARN (`functions`, `invoke`; permission checked
   against the execution role by `roles`);
3. docker's `config.json` (`dockerconfig`, `helpers`): `credHelpers` > `credsStore` > `auths`;
4. cloud helpers: ECR (`ecr`) through boto3's `GetAuthorizationToken`;
5. anonymous.

Google Container Registry and Artifact Registry (`gcr.io`, `<region>-docker.pkg.dev`) need no helper of
their own: they take HTTP Basic credentials at their token endpoint, so any source above can supply them —
username `_json_key` with the service-account JSON key file's contents as the password (verbatim, not
base64), `_json_key_base64` with the same file base64-encoded, or `oauth2accesstoken` with the output of
`gcloud auth print-access-token` (valid about an hour). Docker Hub takes a Docker ID and password or
personal access token; ECR takes `AWS` and the token, which `ecr.EcrKeychain` fetches and refreshes.

This layer knows nothing about HTTP: it never imports `forklift.registry`. Secret values never reach
logs, exception messages or process arguments (see `Credentials.secrets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from forklift.credentials.errors import (  # noqa: F401 - re-exported
    AccessDeniedByRole,
    CredentialsError,
    FunctionFailed,
    FunctionNotFound,
    InvalidArn,
)

if TYPE_CHECKING:  # as mypy sees it; at run time __getattr__ imports it
    from forklift.credentials.chain import default_keychain as default_keychain


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


def __getattr__(name: str) -> object:
    # The chain pulls in config and docker-config modules; import it only when asked for.
    if name == "default_keychain":
        from forklift.credentials.chain import default_keychain

        return default_keychain
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

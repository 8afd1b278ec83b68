"""The one keychain every feature uses: sources in the documented order.

    1. explicit credentials of the job / experiment / model (CLI flags, a SecretStore id)
    2. the credentials-provider function the job or model names (RepositoryCredentialsProviderArn)
    3. docker's config.json (credHelpers > credsStore > auths)
    4. cloud helpers: ECR token via boto3
    5. anonymous

The first source with an answer wins. Naming a function checks, up front, that it exists and that the
execution role may invoke it, so a bad ARN fails when the job or model is created, not mid-pull.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from forklift.cancel import NEVER, Cancel
from forklift.config import Settings, load_settings
from forklift.credentials import (
    ANONYMOUS,
    AnonymousKeychain,
    Credentials,
    Keychain,
    KeychainChain,
    StaticKeychain,
)
from forklift.credentials.dockerconfig import DockerConfigKeychain
from forklift.credentials.ecr import EcrKeychain
from forklift.reference import parse

if TYPE_CHECKING:
    from forklift.credentials.functions import FunctionRegistry


class FunctionKeychain:
    """Asks a provider function, once per (registry, repository) for the life of this object.

    With `image`, only that image's registry is asked about (a provider is written for its image).
    A stop (`cancel`) kills a provider that is running.
    """

    def __init__(self, functions: FunctionRegistry, arn: str, *, image: str | None = None, cancel: Cancel = NEVER):
        self._functions = functions
        self.arn = arn
        self._cancel = cancel
        self._image = image
        ref = parse(image) if image else None
        self._registry = ref.registry if ref else None
        self._repository = ref.repository if ref else None
        self._answers: dict[tuple[str, str], Credentials] = {}
        self._lock = threading.Lock()

    def resolve(self, registry: str, repository: str) -> Credentials:
        if self._registry is not None and registry != self._registry:
            return ANONYMOUS
        with self._lock:
            if not repository:  # the registry-wide ping: whatever the provider said for this registry
                if self._repository:
                    repository = self._repository
                else:
                    known = [c for (r, _), c in self._answers.items() if r == registry]
                    if known:
                        return known[0]
            key = (registry, repository)
            if key not in self._answers:
                self._answers[key] = self._functions.credentials(self.arn, registry, repository, self._image,
                                                                  self._cancel)
            return self._answers[key]


def check_provider(settings: Settings, function_arn: str, role_arn: str | None) -> str:
    """Validate a provider ARN and the role's permission; returns the canonical ARN.

    Raises FunctionNotFound / InvalidArn / AccessDeniedByRole — what CreateModel and CreateTrainingJob
    report as a ValidationException.
    """
    # functions and roles bring SQLAlchemy and cryptography: imported only when a provider is named
    from forklift.credentials.functions import FunctionRegistry, secret_id_of
    from forklift.credentials.roles import RoleStore

    functions = FunctionRegistry(settings)
    canonical = functions.get(function_arn).arn
    if secret_id_of(canonical) is None:  # stored credentials run no code: nothing for a role to allow
        RoleStore(settings).check_invoke(role_arn, canonical)
    return canonical


def default_keychain(
    settings: Settings | None = None,
    *,
    explicit: Credentials | Keychain | None = None,
    explicit_registry: str | None = None,
    function_arn: str | None = None,
    role_arn: str | None = None,
    image: str | None = None,
    docker_config: bool | str | Path = True,
    ecr: bool | EcrKeychain = True,
    cancel: Cancel = NEVER,
) -> KeychainChain:
    """The chain for one job, experiment, model or command.

    `explicit` is Credentials (scoped to `explicit_registry` when given) or a keychain such as a
    SecretKeychain; `docker_config` may name a config.json; `ecr` may be a prepared EcrKeychain;
    `cancel` is the stop request of the job or endpoint the chain pulls for (it kills a running provider).
    """
    settings = settings or load_settings()
    chain: list[Keychain] = []
    if isinstance(explicit, Credentials):
        if not explicit.is_anonymous:
            chain.append(StaticKeychain(explicit, explicit_registry))
    elif explicit is not None:
        chain.append(explicit)
    if function_arn:
        from forklift.credentials.functions import FunctionRegistry  # see check_provider

        check_provider(settings, function_arn, role_arn)
        chain.append(FunctionKeychain(FunctionRegistry(settings), function_arn, image=image, cancel=cancel))
    if docker_config:
        chain.append(DockerConfigKeychain(Path(docker_config) if isinstance(docker_config, (str, Path)) else None))
    if ecr:
        chain.append(ecr if isinstance(ecr, EcrKeychain) else EcrKeychain())
    chain.append(AnonymousKeychain())
    return KeychainChain(*chain)


async def prefetch(keychain: Keychain, image: str) -> Credentials:
    """Resolve `image`'s credentials on a worker thread before an async pull starts.

    Provider functions, credential helpers and ECR are blocking calls (a provider may take seconds);
    resolved here, they stay off the event loop, and the pull's own resolves hit the sources' caches.
    """
    ref = parse(image)
    return await asyncio.to_thread(keychain.resolve, ref.registry, ref.repository)

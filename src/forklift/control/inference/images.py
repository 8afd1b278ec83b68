"""A model's image: SageMaker's Platform/Vpc rules, the credentials provider, and the digest.

As on SageMaker, the credentials provider is called and the tag resolved when the model is
created, so a wrong ARN, failing credentials or a missing image is a CreateModel error that says
which. Endpoints then pull `registry/repo@digest`, so every instance runs the same bytes.
"""

from __future__ import annotations

import asyncio

from forklift.cancel import NEVER, Cancel
from forklift.config import Settings
from forklift.control.imageaccess import INFERENCE, check_image_access
from forklift.control.inference.errors import InvalidRequest
from forklift.control.outcome import image_error_kinds, image_error_reason
from forklift.control.settings import ControlSettings
from forklift.credentials import Keychain
from forklift.credentials.chain import default_keychain
from forklift.images.limits import ImageLimitExceeded
from forklift.reference import parse
from forklift.registry import RegistryClient


def provider_arn(container: dict) -> str | None:
    return ((container.get("ImageConfig") or {}).get("RepositoryAuthConfig") or {}).get(
        "RepositoryCredentialsProviderArn")


def check_image_config(settings: Settings, control: ControlSettings, container: dict, request: dict) -> None:
    """The rules the botocore model cannot express (same as training's, in inference words)."""
    image = container.get("Image")
    if not image:
        raise InvalidRequest("The container definition needs an Image: forklift does not deploy model packages "
                             "(ModelPackageName)")
    mode = (container.get("ImageConfig") or {}).get("RepositoryAccessMode", "Platform")
    check_image_access(settings, control, INFERENCE, image, mode, provider_arn(container),
                       request.get("ExecutionRoleArn"), bool(request.get("VpcConfig")))


def keychain_for(settings: Settings, container: dict, role_arn: str | None, cancel: Cancel = NEVER) -> Keychain:
    return default_keychain(settings, function_arn=provider_arn(container), role_arn=role_arn,
                            image=container["Image"], cancel=cancel)


def resolve_image(settings: Settings, container: dict, role_arn: str | None) -> str:
    """`registry/repo@sha256:…` for the container's image; InvalidRequest saying why it cannot be."""
    image = container["Image"]
    ref = parse(image)

    async def resolve() -> str:
        keychain = await asyncio.to_thread(keychain_for, settings, container, role_arn)
        async with RegistryClient(ref.registry, keychain=keychain, settings=settings, max_retries=1) as client:
            return (await client.resolve(ref)).digest

    try:
        digest = asyncio.run(resolve())
    except Exception as exc:  # noqa: BLE001 - credential providers, TLS, the registry: image_failure says which
        raise InvalidRequest(image_failure(image, exc)) from None
    return f"{ref.registry}/{ref.repository}@{digest}"


def image_failure(image: str, exc: BaseException) -> str:
    """Why `image` could not be resolved or pulled: names the registry and the cause."""
    credentials, authentication, not_found, tls, registry_error = image_error_kinds()
    return image_error_reason(image, exc, [
        (credentials, "The credentials provider for image {image} failed: {exc}"),
        (authentication, "Authentication to registry {registry} failed for image {image} (are the credentials "
                         "the provider returns right?): {exc}"),
        (not_found, "Image {image} was not found in registry {registry}: {exc}"),
        (tls, "TLS to registry {registry} failed (certificate signed by unknown authority?); add its CA to "
              "$FORKLIFT_HOME/certs.d/{registry}/ca.crt: {exc}"),
        (registry_error, "Registry {registry} could not serve image {image}: {exc}"),
        (ImageLimitExceeded, "{exc}"),  # names the image, the limit and the setting
        (None, "Image {image} could not be resolved: {error_type}: {exc}"),
    ])


def model_container(request: dict) -> dict:
    """The one container of a model: PrimaryContainer, or the single entry of Containers."""
    return request.get("PrimaryContainer") or (request.get("Containers") or [{}])[0]

"""SageMaker's rules for reaching a job's or a model's image, checked when the request arrives.

`Platform` access (the default) takes images from a platform registry only (the region's ECR or a
registry listed in config.toml's `platform_registries`); `Vpc` access reaches any registry and
requires a VpcConfig; a credentials provider (a function ARN) requires `Vpc`, and an experiment's stored
credentials (`credentials.reserved`) serve only that experiment's own runs. Training and inference
apply the same rules to differently named members, so each says which names its caller wrote.
"""

from __future__ import annotations

from dataclasses import dataclass

from forklift.config import Settings
from forklift.control.errors import InvalidRequest
from forklift.control.settings import ControlSettings
from forklift.credentials.chain import check_provider
from forklift.credentials.errors import CredentialsError
from forklift.credentials.reserved import RunClaim, check_reserved
from forklift.reference import InvalidReference, parse


@dataclass(frozen=True)
class Wording:
    image: str  # the member that names the image, as the "invalid image" error quotes it
    image_short: str  # the same, as the "not a platform registry" error names it
    invalid: str  # what the image is not, when it does not parse
    purpose: str  # "to <purpose> an image from a private registry"
    config: str  # the member holding the access mode
    mode: str  # the access-mode member
    auth: str  # the credentials-provider member
    provider: str  # the member inside it holding the provider's ARN


TRAINING = Wording("AlgorithmSpecification.TrainingImage", "TrainingImage", "a valid image", "train with",
                   "TrainingImageConfig", "TrainingRepositoryAccessMode", "TrainingRepositoryAuthConfig",
                   "TrainingRepositoryCredentialsProviderArn")
INFERENCE = Wording("Image", "Image", "a valid image reference", "deploy", "ImageConfig", "RepositoryAccessMode",
                    "RepositoryAuthConfig", "RepositoryCredentialsProviderArn")


def check_image_access(settings: Settings, control: ControlSettings, words: Wording, image: str, mode: str,
                       provider: str | None, role_arn: str | None, has_vpc: bool,
                       claim: RunClaim | None = None) -> None:
    """InvalidRequest naming the member to change when the image cannot be reached as asked. `claim` is
    what a training job says of itself as an experiment's run (None: it is no experiment's run)."""
    try:
        ref = parse(image)
    except InvalidReference as exc:
        raise InvalidRequest(f"{words.image} {image!r} is not {words.invalid}: {exc}") from None
    if mode == "Platform" and not control.is_platform_registry(ref.registry):
        raise InvalidRequest(
            f"{words.image_short} {image} is in registry {ref.registry}, which is not a platform registry: to "
            f"{words.purpose} an image from a private registry set {words.config}.{words.mode} to Vpc and give a "
            "VpcConfig")
    if mode == "Vpc" and not has_vpc:
        raise InvalidRequest(f"{words.mode} Vpc requires a VpcConfig (SecurityGroupIds and Subnets)")
    if provider:
        if mode != "Vpc":
            raise InvalidRequest(f"{words.auth} requires {words.mode} Vpc")
        try:
            check_provider(settings, provider, role_arn)
            check_reserved(settings, provider, f"{words.auth}.{words.provider}", claim)
        except CredentialsError as exc:
            raise InvalidRequest(str(exc)) from None

"""A training job's or an endpoint's Kubernetes objects for a person to review (`forklift k8s render`): what the
Kubernetes backend applies, or would apply, for it, built with the same functions and without a
cluster.

    training_job_objects(settings, kube, row)   # [Secret?, NetworkPolicy?, Job], Secrets redacted
    endpoint_objects(settings, kube, store, name)   # per variant [Secret?, Deployment, Service]

The image is the digest the job already resolved; a job that has not resolved it yet is resolved
now through its credentials chain, as the backend's `obtain` does. The chain also says whether the
registry needs credentials, and so whether there is a Secret; the Secret is built with
placeholders, never the credentials found, and its data is "<redacted>" either way.
"""

from __future__ import annotations

from typing import Any

from forklift.config import Settings
from forklift.control import outcome, staging
from forklift.control.containers import container_name, training_container
from forklift.control.errors import RenderFailed
from forklift.control.inference import instances as inst
from forklift.control.inference.errors import NotFound
from forklift.control.inference.images import image_failure, model_container
from forklift.control.inference.models import EndpointConfigRow, EndpointRow, ModelRow
from forklift.control.inference.store import InferenceStore
from forklift.control.kubernetes.endpoints import network_of, variant_credentials, variant_objects
from forklift.control.kubernetes.training import obtain_image, training_objects
from forklift.control.launching import PlatformFailure
from forklift.control.logs import job_dir
from forklift.control.models import TrainingJobRow
from forklift.control.scriptmode import endpoint_code_uri
from forklift.kube.errors import KubeError
from forklift.kube.pullsecrets import REDACTED, redacted
from forklift.kube.settings import KubeSettings
from forklift.reference import parse

PLACEHOLDER_CREDENTIALS = (REDACTED, REDACTED)


def training_job_objects(settings: Settings, kube: KubeSettings, row: TrainingJobRow) -> list[dict[str, Any]]:
    """The objects of `row` in the order they are created, every Secret's data "<redacted>"."""
    image = row.request["AlgorithmSpecification"]["TrainingImage"]
    digest = parse(row.resolved_image).digest if row.resolved_image else None
    directory = job_dir(settings.home, row.name)
    try:
        obtained = obtain_image(settings, row, digest)
        resolved = row.resolved_image or outcome.resolved_reference(image, obtained.digest)
        # The name of the attempt that ran (so the names match the cluster's), else a new attempt's.
        container = training_container(settings, row, directory, resolved,
                                       staging.fastfile_mounts(directory, row.request),
                                       name=row.container_name or container_name(row.name))
        made = training_objects(settings, kube, container,
                                PLACEHOLDER_CREDENTIALS if obtained.prepared is not None else None)
    except (PlatformFailure, KubeError) as exc:
        raise RenderFailed(f"the Kubernetes objects of training job {row.name} cannot be rendered: {exc}") from None
    return [redacted(obj) for obj in made]


def endpoint_objects(settings: Settings, kube: KubeSettings, store: InferenceStore,
                     name: str) -> list[dict[str, Any]]:
    """An endpoint's objects, variant by variant, for the configuration it serves (its generation and
    instance counts); every Secret's data "<redacted>". `NotFound` for an unknown endpoint."""
    row = store.get(EndpointRow, name)
    if row is None:
        raise NotFound(f"Could not find endpoint {name}.")
    config = store.get(EndpointConfigRow, row.config_name)
    if config is None:
        raise RenderFailed(f"the endpoint configuration {row.config_name} of endpoint {name} no longer exists")
    counts = {v["VariantName"]: v.get("CurrentInstanceCount") for v in row.variants}
    directory = inst.endpoint_dir(settings, name)
    made: list[dict[str, Any]] = []
    for variant in config.request["ProductionVariants"]:
        model = store.get(ModelRow, variant["ModelName"])
        if model is None:
            raise RenderFailed(f"variant {variant['VariantName']}: its model {variant['ModelName']} no longer exists")
        try:
            needs_secret = variant_credentials(settings, model) is not None
        except Exception as exc:  # noqa: BLE001 - the provider, docker's config, ECR: image_failure says which
            reason = image_failure(model.resolved_image, exc)
            raise RenderFailed(f"variant {variant['VariantName']}: {reason}") from None
        container = dict(model_container(model.request))
        generation_dir = directory / f"{variant['VariantName']}-g{row.generation}"
        code_dir = generation_dir / "code" if endpoint_code_uri(container) else None
        # What is asked is DescribeEndpoint: the model's environment (often keys) is DescribeModel's to show.
        container["Environment"] = {key: REDACTED for key in container.get("Environment") or {}}
        prepared = inst.PreparedVariant(
            variant["VariantName"], model.name, container, None, {},
            generation_dir / "model", variant.get("InstanceType"), {"ResolvedImage": model.resolved_image},
            pull_credentials=PLACEHOLDER_CREDENTIALS if needs_secret else None, code_dir=code_dir, **network_of(model))
        replicas = counts.get(variant["VariantName"]) or int(variant.get("InitialInstanceCount") or 1)
        try:
            made += variant_objects(settings, kube, name, prepared, row.generation, int(replicas))
        except (inst.DeployFailure, KubeError) as exc:
            raise RenderFailed(f"the Kubernetes objects of endpoint {name} cannot be rendered: {exc}") from None
    return [redacted(obj) for obj in made]

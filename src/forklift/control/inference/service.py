"""InferenceService: create, describe, list, update and delete models, endpoint configs and endpoints.

Requests arrive checked against botocore's model; this adds the rules it cannot express (the
Platform/Vpc image rules, the credentials provider, references between resources) and leaves the
slow work (pulling, starting containers) to the fleet manager, which it wakes. Each create records
the principal that asked (`created_by`): the owner its image pulls are audited under.
"""

from __future__ import annotations

import json
import time
from typing import Any

from forklift.config import Settings
from forklift.control.inference import images
from forklift.control.inference.errors import InUse, InvalidRequest, ResourceMissing
from forklift.control.inference.manager import FleetManager
from forklift.control.inference.models import EndpointConfigRow, EndpointRow, ModelRow
from forklift.control.inference.store import InferenceStore
from forklift.control.inference.variants import summaries
from forklift.control.instance_types import UnknownInstanceType, resolve_instance_type
from forklift.control.scriptmode import ENVIRONMENT, endpoint_code_uri
from forklift.control.settings import ControlSettings
from forklift.control.tags import check_tags
from forklift.storage import StorageError, check_file_uri

KINDS = {ModelRow: "model", EndpointConfigRow: "endpoint-config", EndpointRow: "endpoint"}


def _plain(request: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(request, default=str))


class InferenceService:
    def __init__(self, settings: Settings, control: ControlSettings, store: InferenceStore, fleet: FleetManager):
        self.settings, self.control, self.store, self.fleet = settings, control, store, fleet

    def get(self, kind: type, name: str):
        row = self.store.get(kind, name)
        if row is None:
            raise ResourceMissing(KINDS[kind], name)
        return row

    # -- models ------------------------------------------------------------------------------
    def create_model(self, request: dict[str, Any], arn: str, created_by: str) -> ModelRow:
        request = _plain(request)
        check_tags(request.get("Tags") or [])
        containers = request.get("Containers") or []
        if request.get("PrimaryContainer") and containers:
            raise InvalidRequest("Give either PrimaryContainer or Containers, not both")
        if len(containers) > 1 or (request.get("InferenceExecutionConfig") or {}).get("Mode") == "Direct":
            raise InvalidRequest("Multi-container models (more than one entry in Containers) are not yet supported "
                                 "by forklift; give one PrimaryContainer")
        container = images.model_container(request)
        if not container:
            raise InvalidRequest("A model needs a PrimaryContainer (or one entry in Containers)")
        if self.store.get(ModelRow, request["ModelName"]) is not None:
            raise InvalidRequest(f"Cannot create already existing model \"{arn}\".")
        url = container.get("ModelDataUrl")
        if url and not url.endswith(".tar.gz"):
            raise InvalidRequest(f"ModelDataUrl {url} must point to a .tar.gz archive")
        field = "PrimaryContainer" if request.get("PrimaryContainer") else "Containers[0]"
        # the script-mode code is staged from the host as the model data is: held to the same roots
        for where, uri in ((f"{field}.ModelDataUrl", url),
                           (f"{field}.Environment.{ENVIRONMENT}", endpoint_code_uri(container))):
            if uri:
                try:
                    check_file_uri(uri, self.settings, where)
                except StorageError as exc:
                    raise InvalidRequest(str(exc)) from None
        images.check_image_config(self.settings, self.control, container, request)
        resolved = images.resolve_image(self.settings, container, request.get("ExecutionRoleArn"))
        now = time.time()
        row = ModelRow(name=request["ModelName"], arn=arn, request=request, resolved_image=resolved,
                       resolution_time=now, created_at=now, created_by=created_by)
        return self.store.insert(row, "model", request.get("Tags") or [])

    def delete_model(self, name: str) -> None:
        if not self.store.delete(ModelRow, name):
            raise ResourceMissing("model", name)

    # -- endpoint configs ----------------------------------------------------------------------
    def create_endpoint_config(self, request: dict[str, Any], arn: str,
                               created_by: str) -> EndpointConfigRow:
        request = _plain(request)
        check_tags(request.get("Tags") or [])
        seen = set()
        for variant in request["ProductionVariants"]:
            name = variant["VariantName"]
            if name in seen:
                raise InvalidRequest(f"VariantName {name} is used more than once in ProductionVariants")
            seen.add(name)
            if variant.get("ServerlessConfig"):
                raise InvalidRequest(f"Variant {name}: serverless inference is not supported by forklift; give "
                                     "InitialInstanceCount and InstanceType")
            if not variant.get("ModelName"):
                raise InvalidRequest(f"Variant {name}: ModelName is required")
            if self.store.get(ModelRow, variant["ModelName"]) is None:
                raise ResourceMissing("model", variant["ModelName"])
            if variant.get("InstanceType"):
                try:
                    resolve_instance_type(variant["InstanceType"])
                except UnknownInstanceType as exc:
                    raise InvalidRequest(f"Variant {name}: {exc}") from None
            variant.setdefault("InitialInstanceCount", 1)
            variant.setdefault("InitialVariantWeight", 1.0)
        for unsupported in ("AsyncInferenceConfig", "ShadowProductionVariants"):
            if request.get(unsupported):
                raise InvalidRequest(f"{unsupported} is not yet supported by forklift")
        now = time.time()
        return self.store.insert(EndpointConfigRow(name=request["EndpointConfigName"], arn=arn, request=request,
                                                   created_at=now, created_by=created_by),
                                 "endpoint configuration", request.get("Tags") or [])

    def delete_endpoint_config(self, name: str) -> None:
        if not self.store.delete(EndpointConfigRow, name):
            raise ResourceMissing("endpoint-config", name)

    # -- endpoints -------------------------------------------------------------------------------
    def create_endpoint(self, request: dict[str, Any], arn: str, created_by: str) -> EndpointRow:
        check_tags(request.get("Tags") or [])
        config = self.get(EndpointConfigRow, request["EndpointConfigName"])
        variants = config.request["ProductionVariants"]
        counts = {v["VariantName"]: int(v["InitialInstanceCount"]) for v in variants}
        weights = {v["VariantName"]: float(v["InitialVariantWeight"]) for v in variants}
        now = time.time()
        pending = summaries(variants, {}, counts, weights)
        for v in pending:
            v.update(CurrentInstanceCount=0, VariantStatus=[{"Status": "Creating", "StartTime": now,
                                                             "StatusMessage": "Starting instances"}])
        row = EndpointRow(name=request["EndpointName"], arn=arn, config_name=config.name, status="Creating",
                          created_at=now, modified_at=now, variants=pending, generation=0, created_by=created_by)
        self.store.insert(row, "endpoint", _plain(request).get("Tags") or [])
        self.fleet.wake(row.name)
        return row

    def update_endpoint(self, name: str, config_name: str) -> EndpointRow:
        self._updatable(name)
        self.get(EndpointConfigRow, config_name)

        def updating(r: EndpointRow) -> None:
            r.status, r.pending_config = "Updating", config_name
        row = self.store.update_endpoint(name, updating)
        self.fleet.wake(name)
        return row

    def update_weights_and_capacities(self, name: str, desired: list[dict]) -> EndpointRow:
        row = self._updatable(name)
        known = {v["VariantName"] for v in row.variants}
        for want in desired:
            if want["VariantName"] not in known:
                raise InvalidRequest(f"The variant {want['VariantName']} does not exist in endpoint {name}")
            if "DesiredWeight" not in want and "DesiredInstanceCount" not in want:
                raise InvalidRequest(f"Variant {want['VariantName']}: give DesiredWeight or DesiredInstanceCount")

        def updating(r: EndpointRow) -> None:
            r.status, r.pending_variants = "Updating", _plain({"v": desired})["v"]
        row = self.store.update_endpoint(name, updating)
        self.fleet.wake(name)
        return row

    def _updatable(self, name: str) -> EndpointRow:
        row = self.get(EndpointRow, name)
        if row.status != "InService":
            raise InUse(f"Cannot update in-progress endpoint \"{row.arn}\": it is {row.status}")
        return row

    def delete_endpoint(self, name: str) -> None:
        self.get(EndpointRow, name)
        def deleting(r: EndpointRow) -> None:
            r.status = "Deleting"
        self.store.update_endpoint(name, deleting)
        self.fleet.wake(name)

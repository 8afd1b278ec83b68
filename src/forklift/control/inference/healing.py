"""Self-healing of an InService endpoint: replace instances that died or stopped answering /ping.

Runs on the endpoint's worker thread every `health_interval` seconds. A broken instance leaves the
routing table at once (requests go to its healthy siblings), the event is written to the
endpoint's events log and shown in its variant's VariantStatus until the replacement is healthy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklift.control.inference import instances as inst
from forklift.control.inference.models import EndpointConfigRow, EndpointRow
from forklift.control.inference.variants import set_variant_status, with_counts

if TYPE_CHECKING:
    from forklift.control.inference.worker import EndpointWorker


def heal(worker: EndpointWorker, row: EndpointRow) -> None:
    broken = _remove_broken(worker)
    replaced = _top_up(worker, row)
    if broken or replaced:
        counts = {v["VariantName"]: sum(1 for i in worker.fleet_instances if i.variant == v["VariantName"])
                  for v in row.variants}

        def recount(r: EndpointRow) -> None:
            variants = with_counts(r.variants, counts, worker.weights)
            for v in variants:
                if counts.get(v["VariantName"], 0) >= v["DesiredInstanceCount"]:
                    variants = set_variant_status(variants, v["VariantName"], None)
            r.variants = variants
        worker.store.update_endpoint(worker.name, recount)


def _remove_broken(worker: EndpointWorker) -> bool:
    found = False
    for instance in list(worker.fleet_instances):
        ended = inst.exit_description(instance.handle)
        if ended is None:
            if inst.ping(instance.address):
                instance.failed_pings = 0
                continue
            instance.failed_pings += 1
            if instance.failed_pings < worker.config.unhealthy_after:
                continue
            ended = f"GET /ping failed {instance.failed_pings} times in a row"
        found = True
        worker.fleet_instances.remove(instance)
        worker.publish()
        first_line = ended.splitlines()[0]
        worker.event(f"Instance {instance.name} of variant {instance.variant} is unhealthy ({ended}); replacing it")
        message = f"Replacing instance {instance.name}: {first_line}"
        worker.store.update_endpoint(worker.name, lambda r, v=instance.variant, m=message: setattr(
            r, "variants", set_variant_status(r.variants, v, "Updating", m)))
        worker.fleet.retire(worker.name, [instance], drain=False)
    return found


def _top_up(worker: EndpointWorker, row: EndpointRow) -> bool:
    """Start instances until every variant has its DesiredInstanceCount again."""
    missing = {v["VariantName"]: int(v.get("DesiredInstanceCount", 0))
               - sum(1 for i in worker.fleet_instances if i.variant == v["VariantName"]) for v in row.variants}
    if not any(n > 0 for n in missing.values()):
        return False
    config = worker.store.get(EndpointConfigRow, row.config_name)
    configured = {v["VariantName"]: v for v in (config.request["ProductionVariants"] if config else [])}
    started = False
    for name, count in missing.items():
        if count <= 0:
            continue
        variant = configured.get(name) or {"VariantName": name, "ModelName": _model_of(row, name)}
        try:
            fresh = worker._bring_up([variant], worker.generation, {name: count})
        except inst.DeployFailure as exc:
            worker.event(f"Replacing instances of variant {name} failed, will retry: {exc}")
            continue
        worker.fleet_instances.extend(fresh)
        worker.publish()
        started = True
        worker.event(f"Variant {name}: {', '.join(i.name for i in fresh)} now serve(s) in place of the lost "
                     "instance(s)")
    return started


def _model_of(row: EndpointRow, variant: str) -> str | None:
    return next((v.get("ModelName") for v in row.variants if v["VariantName"] == variant), None)

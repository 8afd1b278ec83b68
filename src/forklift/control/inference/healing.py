"""Self-healing of an InService endpoint: replace instances that died or stopped answering /ping.

Runs on the endpoint's worker thread every `health_interval` seconds. A broken instance leaves the
routing table at once (requests go to its healthy siblings), the event is written to the
endpoint's events log and shown in its variant's VariantStatus until the replacement is healthy.
"""

from __future__ import annotations

from forklift.control.inference import instances as inst
from forklift.control.inference.backoff import STABLE_SECONDS
from forklift.control.inference.fleet import Fleet
from forklift.control.inference.models import EndpointConfigRow, EndpointRow
from forklift.control.inference.store import InferenceStore
from forklift.control.inference.variants import set_variant_status, with_counts


def heal(fleet: Fleet, row: EndpointRow, store: InferenceStore) -> None:
    broken = _remove_broken(fleet, store)
    replaced = _top_up(fleet, row, store)
    if broken or replaced:
        counts = {v["VariantName"]: fleet.count(v["VariantName"]) for v in row.variants}
        weights = fleet.weights

        def recount(r: EndpointRow) -> None:
            variants = with_counts(r.variants, counts, weights)
            for v in variants:
                if counts.get(v["VariantName"], 0) >= v["DesiredInstanceCount"]:
                    variants = set_variant_status(variants, v["VariantName"], None)
            r.variants = variants
        store.update_endpoint(fleet.endpoint, recount)


def _remove_broken(fleet: Fleet, store: InferenceStore) -> bool:
    broken = fleet.broken(fleet.config.unhealthy_after)
    for instance, ended in broken:
        fleet.withdraw([instance])
        fleet.backoff.lost(instance.name, instance.variant)
        first_line = ended.splitlines()[0]
        pace = _pace(fleet, instance.variant)
        fleet.event(f"Instance {instance.name} of variant {instance.variant} is unhealthy ({ended}); "
                    f"replacing it{pace}")
        message = f"Replacing instance {instance.name}{pace}: {first_line}"

        def replacing(r: EndpointRow, variant: str = instance.variant, message: str = message) -> None:
            r.variants = set_variant_status(r.variants, variant, "Updating", message)
        store.update_endpoint(fleet.endpoint, replacing)
        fleet.retire([instance], drain=False)
    return bool(broken)


def _top_up(fleet: Fleet, row: EndpointRow, store: InferenceStore) -> bool:
    """Start instances until every variant has its DesiredInstanceCount again."""
    missing = {v["VariantName"]: int(v.get("DesiredInstanceCount", 0)) - fleet.count(v["VariantName"])
               for v in row.variants}
    if not any(n > 0 for n in missing.values()):
        return False
    config = store.get(EndpointConfigRow, row.config_name)
    configured = {v["VariantName"]: v for v in (config.request["ProductionVariants"] if config else [])}
    started = False
    for name, count in missing.items():
        if count <= 0:
            continue
        variant = configured.get(name) or {"VariantName": name, "ModelName": _model_of(row, name)}
        if fleet.backoff.wait(name) > 0:
            continue  # a crash loop: the variant's status says when the next attempt is
        try:
            fresh = fleet.bring_up([variant], fleet.generation, {name: count})
        except inst.DeployFailure as exc:
            fleet.backoff.failed(name)
            pace = _pace(fleet, name)
            fleet.event(f"Replacing instances of variant {name} failed, will retry{pace or ' now'}: {exc}")
            message = f"Replacing instances failed, will retry{pace or ' now'}: {str(exc).splitlines()[0]}"

            def retrying(r: EndpointRow, variant_name: str = name, message: str = message) -> None:
                r.variants = set_variant_status(r.variants, variant_name, "Updating", message)
            store.update_endpoint(fleet.endpoint, retrying)
            continue
        fleet.add(fresh)
        started = True
        fleet.event(f"Variant {name}: {', '.join(i.name for i in fresh)} now serve(s) in place of the lost "
                    "instance(s)")
    return started


def _pace(fleet: Fleet, variant: str) -> str:
    """'' while replacements go ahead at once; else when the next one starts and why it waits."""
    streak = fleet.backoff.streak(variant)
    delay = fleet.backoff.delay(streak)
    if not delay:
        return ""
    return (f" in {delay:g} s ({streak} instances lost or not started in a row, each within "
            f"{STABLE_SECONDS:g} s of its start: backing off)")


def _model_of(row: EndpointRow, variant: str) -> str | None:
    return next((v.get("ModelName") for v in row.variants if v["VariantName"] == variant), None)

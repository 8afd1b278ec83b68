"""UpdateEndpointWeightsAndCapacities: new weights take effect at once; capacity grows by starting
healthy instances before routing to them, and shrinks by draining the extra ones first."""

from __future__ import annotations

from forklift.control.inference import instances as inst
from forklift.control.inference.fleet import Fleet
from forklift.control.inference.models import EndpointConfigRow, EndpointRow
from forklift.control.inference.store import InferenceStore
from forklift.control.inference.variants import with_counts


def apply_weights_and_capacities(fleet: Fleet, row: EndpointRow, store: InferenceStore) -> None:
    config = store.get(EndpointConfigRow, row.config_name)
    configured = {v["VariantName"]: v for v in (config.request["ProductionVariants"] if config else [])}
    failures = []
    for want in row.pending_variants or []:
        name = want["VariantName"]
        if "DesiredWeight" in want:
            fleet.weights[name] = float(want["DesiredWeight"])
        if "DesiredInstanceCount" not in want:
            continue
        count = int(want["DesiredInstanceCount"])
        current = fleet.of_variant(name)
        if count > len(current):
            variant = configured.get(name) or {"VariantName": name, "ModelName": None}
            try:
                fleet.add(fleet.bring_up([variant], fleet.generation, {name: count - len(current)}))
            except inst.DeployFailure as exc:
                failures.append(str(exc))
        elif count < len(current):
            fleet.retire(fleet.withdraw(current[count:]))
    fleet.publish()
    counts = {v["VariantName"]: fleet.count(v["VariantName"]) for v in row.variants}
    weights = fleet.weights
    fleet.event(f"Weights {weights} and instance counts {counts} applied")

    def applied(r: EndpointRow) -> None:
        r.variants = [{**v, "DesiredInstanceCount": counts[v["VariantName"]]} for v in
                      with_counts(r.variants, counts, weights)]
        r.status, r.pending_variants = "InService", None
        r.failure_reason = "; ".join(failures)[:1024] or None
    store.update_endpoint(fleet.endpoint, applied)

"""UpdateEndpointWeightsAndCapacities: new weights take effect at once; capacity grows by starting
healthy instances before routing to them, and shrinks by draining the extra ones first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklift.control.inference import instances as inst
from forklift.control.inference.models import EndpointConfigRow, EndpointRow
from forklift.control.inference.variants import with_counts

if TYPE_CHECKING:
    from forklift.control.inference.worker import EndpointWorker


def apply_weights_and_capacities(worker: EndpointWorker, row: EndpointRow) -> None:
    config = worker.store.get(EndpointConfigRow, row.config_name)
    configured = {v["VariantName"]: v for v in (config.request["ProductionVariants"] if config else [])}
    failures = []
    for want in row.pending_variants or []:
        name = want["VariantName"]
        if "DesiredWeight" in want:
            worker.weights[name] = float(want["DesiredWeight"])
        if "DesiredInstanceCount" not in want:
            continue
        count = int(want["DesiredInstanceCount"])
        current = [i for i in worker.fleet_instances if i.variant == name]
        if count > len(current):
            variant = configured.get(name) or {"VariantName": name, "ModelName": None}
            try:
                worker.fleet_instances.extend(worker._bring_up([variant], worker.generation,
                                                               {name: count - len(current)}))
            except inst.DeployFailure as exc:
                failures.append(str(exc))
        elif count < len(current):
            extra = current[count:]
            for instance in extra:
                worker.fleet_instances.remove(instance)
            worker.publish()
            worker.fleet.retire(worker.name, extra)
    worker.publish()
    counts = {v["VariantName"]: sum(1 for i in worker.fleet_instances if i.variant == v["VariantName"])
              for v in row.variants}
    worker.event(f"Weights {worker.weights} and instance counts {counts} applied")

    def applied(r: EndpointRow) -> None:
        r.variants = [{**v, "DesiredInstanceCount": counts[v["VariantName"]]} for v in
                      with_counts(r.variants, counts, worker.weights)]
        r.status, r.pending_variants = "InService", None
        r.failure_reason = "; ".join(failures)[:1024] or None
    worker.store.update_endpoint(worker.name, applied)

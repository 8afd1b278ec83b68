"""Objects that carry forklift's label in the namespace but that no job or endpoint in the database
accounts for: found once when the server starts, and reported, never deleted.

A Job, pod, Deployment or Service labelled `forklift.io/managed-by=forklift` is an orphan when

- its `forklift.io/training-job` label names no training job in the database, or a job that has
  ended (Completed, Failed, Stopped), or a job whose current attempt runs as another Job (its
  `container_name` maps to a different name: `training.job_object_name`);
- its `forklift.io/endpoint` label names no endpoint in the database (which generation of a known
  endpoint an object belongs to is the endpoint launcher's to decide, not this module's).

A pod owned by another object (its Job's, a ReplicaSet's) goes with its owner, as does one that
carries a listed Job's name or a listed Deployment's variant labels, and a Service goes with its
same-named Deployment; none of them is reported on its own. An object carrying neither label is not
judged: forklift makes none, and one labelled by a person is theirs. Secrets and NetworkPolicies
are not listed: forklift may create, patch and delete them but never read them back
(`kube.cluster.PERMISSIONS`: a Role that may list Secrets may read every one in the namespace). Each
bears the name of the Job or Deployment it came with, so that object's removal command names them
too; one left without its Job or Deployment is not found.

Each orphan is one warning line on the `forklift.events` logger (what `forklift serve` always
prints) naming its kind, name, namespace, label and the `kubectl` command that removes it, and one
record in the audit log (`forklift audit`), which outlives the server's output.

Nothing is deleted because the database is not the only possible truth: a second server on
another database, a restore from an older backup, or a person's own object with a copied label
would each lose work to a silent delete. The records are found after the scheduler's reconcile
(which fails the jobs whose Job is gone), and each is read once more before it is reported, so an
object a running job removes meanwhile is not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forklift.audit import AuditLog
from forklift.control import events, status
from forklift.control.inference.models import EndpointRow
from forklift.control.inference.store import InferenceStore
from forklift.control.kubernetes.training import JOB_NAME_LABELS, job_object_name
from forklift.control.models import TrainingJobRow
from forklift.control.store import JobStore
from forklift.kube import names
from forklift.kube.cluster import Cluster, ClusterError

KINDS = ("Job", "Pod", "Deployment", "Service")
# what is named as the object: one of each kind shares the name (training.training_objects, endpoints.variant_objects)
COMPANIONS = {"Job": ("secret", "networkpolicy"), "Deployment": ("service", "secret", "networkpolicy"),
              "Service": ("secret", "networkpolicy")}
PRINCIPAL = "forklift:server"  # the audit records' principal: the server found them, nobody asked


@dataclass(frozen=True)
class Orphan:
    kind: str
    name: str
    namespace: str
    label: str  # the label that names what it belonged to, as key=value
    why: str

    @property
    def remove(self) -> str:
        """The command that removes it and the objects named as it (those that exist)."""
        companions = COMPANIONS.get(self.kind, ())
        if not companions:
            return f"kubectl -n {self.namespace} delete {self.kind.lower()} {self.name}"
        targets = " ".join(f"{kind}/{self.name}" for kind in (self.kind.lower(), *companions))
        return f"kubectl -n {self.namespace} delete {targets} --ignore-not-found"


def find_orphans(cluster: Cluster, store: JobStore, inference: InferenceStore) -> list[Orphan]:
    """Every orphan in the cluster's namespace now (listed first, the database read after)."""
    listed = {kind: _listing(cluster, kind) for kind in KINDS}
    jobs = {obj.metadata.name for obj in listed["Job"]}
    deployments = {obj.metadata.name for obj in listed["Deployment"]}
    variants = {_variant(obj.metadata.labels or {}) for obj in listed["Deployment"]}
    endpoints = {names.label_value(row.name) for row in inference.all(EndpointRow)}
    rows: dict[str, TrainingJobRow | None] = {}
    found = []
    for kind, items in listed.items():
        for obj in items:
            labels = obj.metadata.labels or {}
            if obj.metadata.deletion_timestamp or (kind == "Pod" and _owned(obj, labels, jobs, variants)) or \
                    (kind == "Service" and obj.metadata.name in deployments):
                continue
            if names.TRAINING_JOB in labels:
                job = labels[names.TRAINING_JOB]
                if job not in rows:
                    rows[job] = store.get(job)
                why = _training_why(job, rows[job], _job_name(kind, obj, labels))
                label = f"{names.TRAINING_JOB}={job}"
            elif names.ENDPOINT in labels:
                endpoint = labels[names.ENDPOINT]
                why = None if endpoint in endpoints else f"no endpoint {endpoint} is in this server's database"
                label = ",".join(f"{key}={labels[key]}" for key in (names.ENDPOINT, names.VARIANT, names.GENERATION)
                                 if key in labels)
            else:
                continue
            if why:
                found.append(Orphan(kind, obj.metadata.name, cluster.namespace, label, why))
    return [orphan for orphan in found if _still_there(cluster, orphan)]


def report_orphans(cluster: Cluster, store: JobStore, inference: InferenceStore,
                   audit: AuditLog | None = None) -> list[Orphan]:
    """Find the orphans and report each: a warning line, and a record in `audit` when given."""
    try:
        orphans = find_orphans(cluster, store, inference)
    except Exception as exc:  # noqa: BLE001 - an unreachable cluster: the server still starts, and says so
        events.log.warning("could not look for orphaned Kubernetes objects in namespace %s: %s", cluster.namespace,
                           exc)
        return []
    for orphan in orphans:
        events.log.warning("orphaned Kubernetes object: %s %s in namespace %s (%s): %s; forklift leaves it alone: "
                           "remove it with `%s`", orphan.kind, orphan.name, orphan.namespace, orphan.label,
                           orphan.why, orphan.remove)
        if audit is not None:
            audit.append({"event": "orphan", "principal": PRINCIPAL, "operation": "kubernetes:OrphanFound",
                          "resource": f"{orphan.kind}/{orphan.namespace}/{orphan.name}", "outcome": "reported",
                          "label": orphan.label, "reason": orphan.why, "remove": orphan.remove})
    if orphans:
        events.log.warning("%d orphaned Kubernetes object(s) in namespace %s, none deleted (`forklift audit` lists "
                           "them)", len(orphans), cluster.namespace)
    return orphans


def _listing(cluster: Cluster, kind: str) -> list[Any]:
    try:
        return cluster.list(kind, {names.MANAGED_BY: names.MANAGED_BY_VALUE})
    except ClusterError as exc:
        if exc.status == 404:  # the API server serves no such kind (or, kmock, has never stored one)
            return []
        raise


def _variant(labels: dict[str, str]) -> tuple[str | None, ...]:
    return tuple(labels.get(key) for key in (names.ENDPOINT, names.VARIANT, names.GENERATION))


def _owned(pod: Any, labels: dict[str, str], jobs: set[str], variants: set[tuple[str | None, ...]]) -> bool:
    """A pod its Job or Deployment (listed) or another controller owns: deleting the owner removes it."""
    if pod.metadata.owner_references or any(labels.get(key) in jobs for key in JOB_NAME_LABELS):
        return True
    return names.ENDPOINT in labels and _variant(labels) in variants


def _job_name(kind: str, obj: Any, labels: dict[str, str]) -> str:
    """The Job an object of a training job belongs to: its own name (Job, Secret, NetworkPolicy share
    it), or for a pod the Job its labels name."""
    if kind == "Pod":
        return next((labels[key] for key in JOB_NAME_LABELS if key in labels), obj.metadata.name)
    return obj.metadata.name


def _training_why(job: str, row: TrainingJobRow | None, job_name: str) -> str | None:
    if row is None:
        return f"no training job {job} is in this server's database"
    if status.is_terminal(row):
        return f"training job {job} has ended ({row.status})"
    current = job_object_name(row.container_name) if row.container_name else None
    if current != job_name:
        runs = f"runs as Job {current}" if current else "has not started"
        return f"it is left from an earlier attempt: training job {job}'s current attempt {runs}"
    return None


def _still_there(cluster: Cluster, orphan: Orphan) -> bool:
    try:
        obj = cluster.read(orphan.kind, orphan.name)
    except ClusterError:
        return True  # it was listed a moment ago: reported rather than kept quiet
    return obj is not None and not obj.metadata.deletion_timestamp

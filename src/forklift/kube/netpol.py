"""SageMaker's network settings as a NetworkPolicy over one job's or variant's pods.

`EnableNetworkIsolation` (isolated=True): "No inbound or outbound network calls can be made, except
for calls between peers within a training cluster for distributed training" (CreateTrainingJob's
reference). So the policy lets the selected pods reach each other and nothing else: no egress
beyond the peers (not even DNS), no ingress but from them. Data still flows: it comes through the
claim's mounts, which are no network of the pod's.

`VpcConfig` (isolated=False): the container joins a network the customer controls. Subnets and
security groups have no Kubernetes meaning; what does carry over is that nothing reaches the
container unasked: egress is open, ingress only from the peers.

A serving pod must still be reached by forklift's router, isolated or not (SageMaker's isolation
keeps InvokeEndpoint working): `serving_port` opens that TCP port to pods labelled `serving_from`
(the forklift server's pods), or to any source when `serving_from` is None (a server outside the
cluster reaches pods through the nodes).

A NetworkPolicy binds only where the cluster's network plugin enforces policies (Calico, Cilium,
...); with one that does not (flannel alone), it is accepted and changes nothing.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client import (
    V1LabelSelector,
    V1NetworkPolicy,
    V1NetworkPolicyEgressRule,
    V1NetworkPolicyIngressRule,
    V1NetworkPolicyPeer,
    V1NetworkPolicyPort,
    V1NetworkPolicySpec,
    V1ObjectMeta,
)

from forklift.kube.errors import InvalidObject
from forklift.kube.labels import checked_labels
from forklift.kube.names import MANAGED_BY, is_dns1123_label
from forklift.kube.serialize import to_dict
from forklift.kube.settings import KubeSettings

MAX_PORT = 65535


def network_policy(name: str, selector: dict[str, str], settings: KubeSettings, *, isolated: bool,
                   serving_port: int | None = None, serving_from: dict[str, str] | None = None) -> dict[str, Any]:
    """A NetworkPolicy confining the pods `selector` picks (see the module's docstring)."""
    if not is_dns1123_label(name):
        raise InvalidObject(f"NetworkPolicy name {name!r} is not a DNS-1123 label (forklift.kube.names.object_name)")
    if not set(selector) - {MANAGED_BY}:
        # An empty selector (or managed-by alone) would confine every pod of the namespace.
        raise InvalidObject("a NetworkPolicy's selector must name one job's or variant's pods")
    if serving_port is not None and not (isinstance(serving_port, int) and 1 <= serving_port <= MAX_PORT):
        raise InvalidObject(f"serving_port {serving_port!r}: a TCP port from 1 to {MAX_PORT}")
    pods = checked_labels(selector)
    peers = [V1NetworkPolicyPeer(pod_selector=V1LabelSelector(match_labels=pods))]
    ingress = [V1NetworkPolicyIngressRule(_from=peers)]
    if serving_port is not None:
        sources = None if serving_from is None else [
            V1NetworkPolicyPeer(pod_selector=V1LabelSelector(match_labels=checked_labels(serving_from)))]
        ingress.append(V1NetworkPolicyIngressRule(
            _from=sources, ports=[V1NetworkPolicyPort(protocol="TCP", port=serving_port)]))
    # An empty rule allows every destination.
    egress = [V1NetworkPolicyEgressRule(to=peers)] if isolated else [V1NetworkPolicyEgressRule()]
    policy = V1NetworkPolicy(
        api_version="networking.k8s.io/v1", kind="NetworkPolicy",
        metadata=V1ObjectMeta(name=name, namespace=settings.namespace, labels=pods),
        spec=V1NetworkPolicySpec(pod_selector=V1LabelSelector(match_labels=pods),
                                 policy_types=["Ingress", "Egress"], ingress=ingress, egress=egress))
    return to_dict(policy)

"""The in-memory routing table InvokeEndpoint reads: no database access per request.

The fleet threads publish a new immutable `EndpointRoute` whenever an endpoint's set of healthy
instances or its weights change (replacing the whole object is atomic); the proxy, on the event
loop, only reads it. Variants are chosen by smooth weighted round-robin (nginx's algorithm), so
70/30 weights give exactly 7 of every 10 calls to the first variant, with no clustering; instances
of a variant are taken in turn. `in_flight` lets a retiring instance be drained before it stops.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field


class UnknownVariant(LookupError):
    pass


@dataclass(eq=False)
class InstanceRoute:
    container_name: str
    address: str  # the container's own IP; it serves on port 8080
    in_flight: int = 0
    refused_until: float = 0.0  # it refused a connection: skipped until then, or until the fleet replaces it


@dataclass(eq=False)
class VariantRoute:
    name: str
    weight: float
    instances: list[InstanceRoute]
    _turn: itertools.count = field(default_factory=itertools.count, repr=False)
    _current: float = 0.0  # smooth weighted round-robin state

    def next_instance(self) -> InstanceRoute:
        """The next instance in turn, skipping those that just refused a connection (unless all did)."""
        now = time.monotonic()
        for _ in range(len(self.instances)):
            instance = self.instances[next(self._turn) % len(self.instances)]
            if instance.refused_until <= now:
                return instance
        return instance


class EndpointRoute:
    def __init__(self, variants: list[VariantRoute]):
        self.variants = [v for v in variants if v.instances]
        self._by_name = {v.name: v for v in self.variants}
        self._weighted = [v for v in self.variants if v.weight > 0] or self.variants
        self._total = sum(v.weight for v in self._weighted) or float(len(self._weighted))

    def instances(self) -> list[InstanceRoute]:
        return [i for v in self.variants for i in v.instances]

    def pick(self, target_variant: str | None = None) -> tuple[VariantRoute, InstanceRoute]:
        if target_variant is not None:
            variant = self._by_name.get(target_variant)
            if variant is None:
                raise UnknownVariant(target_variant)
            return variant, variant.next_instance()
        if len(self._weighted) == 1:
            variant = self._weighted[0]
        else:
            best = None
            for v in self._weighted:
                v._current += v.weight if self._total else 1.0
                if best is None or v._current > best._current:
                    best = v
            best._current -= self._total
            variant = best
        return variant, variant.next_instance()


class Router:
    def __init__(self) -> None:
        self._routes: dict[str, EndpointRoute] = {}
        self._publishing = threading.Lock()  # workers of different endpoints publish concurrently
        # Instances are shared by successive routes of an endpoint, so in-flight counts carry over.
        self._instances: dict[str, dict[str, InstanceRoute]] = {}

    def get(self, endpoint: str) -> EndpointRoute | None:
        return self._routes.get(endpoint)

    def publish(self, endpoint: str, route: EndpointRoute | None) -> None:
        """Replace the table in one assignment: readers never lock, and never see a half-made table."""
        with self._publishing:
            routes = dict(self._routes)
            if route is None:  # not serving (Creating, Failed, Deleting): "not found", as on SageMaker
                routes.pop(endpoint, None)
            else:
                routes[endpoint] = route
            self._routes = routes

    def instance(self, endpoint: str, container_name: str, address: str) -> InstanceRoute:
        known = self._instances.setdefault(endpoint, {})
        route = known.get(container_name)
        if route is None:
            route = known[container_name] = InstanceRoute(container_name, address)
        return route

    def forget(self, endpoint: str, container_name: str) -> None:
        self._instances.get(endpoint, {}).pop(container_name, None)

    def in_flight(self, endpoint: str, container_names: set[str]) -> int:
        """Requests these containers are still answering."""
        return sum(i.in_flight for name, i in self._instances.get(endpoint, {}).items() if name in container_names)

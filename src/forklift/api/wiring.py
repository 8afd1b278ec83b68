"""The composition root of `forklift serve`: a control plane, and the API's handlers registered on it.

It sits above everything it wires: the handler modules (`training`, `inference`, `invoke`) only
register themselves in the `ApiServices` they are given.
"""

from __future__ import annotations

from forklift.api import inference, invoke, training
from forklift.api.authn import KeyAuthenticator
from forklift.api.services import ApiServices
from forklift.audit import AuditLog
from forklift.config import Settings
from forklift.control.plane import ControlPlane
from forklift.credentials.accesskeys import AccessKeys


def build_services(settings: Settings, region: str, account: str) -> ApiServices:
    """The services `forklift serve` runs."""
    services = ApiServices(region=region, account=account)
    plane = ControlPlane.create(settings)
    training.install(services, plane)
    inference.install(services, plane.inference)
    invoke.install(services, plane.inference.router)
    services.log_source = plane.log_source()
    services.authenticate = KeyAuthenticator(AccessKeys(settings))
    services.audit = AuditLog(settings.home)
    return services

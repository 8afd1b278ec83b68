"""Keeping a training Job's pull Secret valid until its pod has pulled the image.

A pod pulls when it is scheduled, which may be hours after its Job was created (a pod Pending for
capacity), and some registry credentials expire sooner: an ECR token lasts 12 hours, a provider
function may hand out shorter ones. So while the pod's container has not started, the credentials
are resolved again through the job's own chain (provider function, docker's config, ECR) every
`[kubernetes] secret_refresh_seconds`, and the Secret's data is replaced.

What is kept to do that is how to ask (`PullSource`: the image, the provider's ARN, the role),
never the answer: each password lives only as long as it takes to patch the Secret. A refresh that
fails is a warning line, not a job failure: the Secret in place may still be valid.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from forklift.atomicfile import write_atomically
from forklift.cancel import NEVER, Cancel
from forklift.config import Settings
from forklift.control.launching import PlatformFailure
from forklift.credentials import Credentials, Keychain
from forklift.credentials.chain import default_keychain
from forklift.kube import objects
from forklift.kube.cluster import Cluster
from forklift.kube.settings import KubeSettings
from forklift.reference import parse

log = logging.getLogger(__name__)
SOURCE_FILE = "pull-source.json"  # in the job's container directory, beside the pod's log


def pull_credentials(credentials: Credentials, registry: str) -> tuple[str, str] | None:
    """(username, password) for a pull Secret; None for an anonymous pull."""
    if credentials.is_anonymous:
        return None
    if credentials.username and credentials.password:
        return credentials.username, credentials.password
    raise PlatformFailure(f"ClientError: the credentials found for {registry} are a token, and a Kubernetes pull "
                          "Secret needs a username and password (docker login, a provider function or ECR give one)")


@dataclass(frozen=True)
class PullSource:
    """How a job's registry credentials are asked for: nothing in it is a secret."""

    image: str  # as the request names it (a provider function is asked about this image)
    function_arn: str | None = None
    role_arn: str | None = None

    def keychain(self, settings: Settings, cancel: Cancel = NEVER) -> Keychain:
        """A fresh chain: no answer cached from an earlier ask (`cancel`: the stop that kills its provider)."""
        return default_keychain(settings, function_arn=self.function_arn, role_arn=self.role_arn, image=self.image,
                                cancel=cancel)

    def credentials(self, settings: Settings) -> tuple[str, str] | None:
        ref = parse(self.image)
        return pull_credentials(self.keychain(settings).resolve(ref.registry, ref.repository), ref.registry)

    def save(self, directory: Path, keep: bool = True) -> None:
        """Kept beside the job's pod log, so a restarted server can go on refreshing (`keep`: else
        whatever an earlier attempt saved is removed)."""
        path = directory / SOURCE_FILE
        if not keep:
            path.unlink(missing_ok=True)
            return
        directory.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(asdict(self)).encode(), mode=0o600)

    @classmethod
    def load(cls, directory: Path) -> PullSource | None:
        try:
            data = json.loads((directory / SOURCE_FILE).read_text())
            return cls(str(data["image"]), data.get("function_arn"), data.get("role_arn"))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none was saved (an anonymous pull), or it is unreadable: nothing to refresh


class SecretRefresher:
    """One thread: every `interval` seconds until `done()` (the container started, or the job ended)
    or `stop()`, the Secret `secret` gets the credentials `source` gives now."""

    def __init__(self, cluster: Cluster, kube: KubeSettings, settings: Settings, secret: str, source: PullSource,
                 interval: float, done: Callable[[], bool]):
        self.cluster, self.kube, self.settings = cluster, kube, settings
        self.secret, self.source, self.interval, self.done = secret, source, interval, done
        self.refreshed = 0  # Secrets patched
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"kube-pull-secret-{secret}")

    def start(self) -> SecretRefresher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """True once the thread has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.done():
                return
            self.refresh()

    def refresh(self) -> bool:
        """Patch the Secret with the credentials the chain gives now; False (and a warning) when it cannot."""
        registry = parse(self.source.image).registry
        try:
            credentials = self.source.credentials(self.settings)
            if credentials is None:
                log.warning("refreshing pull Secret %s: the credentials chain no longer gives credentials for %s; "
                            "the Secret keeps the ones it has", self.secret, registry)
                return False
            data = objects.pull_secret(self.secret, registry, *credentials, {}, self.kube)["data"]
            if self._stop.is_set():  # stopped while the chain was asked: the Secret may be gone
                return False
            self.cluster.patch("Secret", self.secret, {"data": data})
        except Exception as exc:  # noqa: BLE001 - a provider, ECR or the API server failing: the old Secret may do
            log.warning("refreshing pull Secret %s for %s failed; it keeps the credentials it has: %s",
                        self.secret, registry, exc)
            return False
        self.refreshed += 1
        log.info("refreshed pull Secret %s for %s", self.secret, registry)
        return True

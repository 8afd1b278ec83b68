"""The latest state of the objects forklift made, kept current by watch streams, not polling.

One thread per kind lists the objects that carry forklift's label (a consistent snapshot and its
resourceVersion), then watches from there; when the stream ends or the server answers 410 Gone it
lists again, so an object deleted while the stream was down does not linger. Waiters are woken on
every change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from forklift.kube.cluster import REQUEST_TIMEOUT, Cluster, has_labels

log = logging.getLogger(__name__)
# A watch is closed by the server after this long and opened again: the bound on how stale a lost
# stream leaves the view, and on how long stop() waits for a thread.
WATCH_SECONDS = 30
RETRY_SECONDS = 1.0


class ObjectWatch:
    def __init__(self, cluster: Cluster, kinds: tuple[str, ...], selector: dict[str, str]):
        self.cluster, self.kinds, self.selector = cluster, kinds, selector
        self._objects: dict[str, dict[str, Any]] = {kind: {} for kind in kinds}
        self._synced = {kind: threading.Event() for kind in kinds}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._watches: list[watch.Watch] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for kind in self.kinds:
            thread = threading.Thread(target=self._follow, args=(kind,), daemon=True, name=f"kube-watch-{kind}")
            thread.start()
            self._threads.append(thread)

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        for stream in list(self._watches):
            stream.stop()  # type: ignore[no-untyped-call]
        with self._changed:
            self._changed.notify_all()

    # -- what the handles read ----------------------------------------------------------------
    def get(self, kind: str, name: str) -> Any | None:
        with self._changed:
            return self._objects[kind].get(name)

    def select(self, kind: str, labels: dict[str, str]) -> list[Any]:
        with self._changed:
            return [obj for obj in self._objects[kind].values() if has_labels(obj, labels)]

    def synced(self, kind: str, timeout: float | None = None) -> bool:
        """True once the first listing of `kind` is in."""
        return self._synced[kind].wait(timeout)

    def wait(self, ready: Callable[[], Any], timeout: float | None) -> Any:
        """`ready()`'s first truthy answer, re-asked on every change; its last answer after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                answer = ready()
                if answer or self._stop.is_set():
                    return answer
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return answer
                self._changed.wait(left if left is not None else WATCH_SECONDS)

    # -- the streams ----------------------------------------------------------------------------
    def _follow(self, kind: str) -> None:
        list_call = self.cluster.watchable(kind)
        text = ",".join(f"{k}={v}" for k, v in self.selector.items())
        while not self._stop.is_set():
            try:
                listing = list_call(self.cluster.namespace, label_selector=text, _request_timeout=REQUEST_TIMEOUT)
                self._replace(kind, {item.metadata.name: item for item in listing.items
                                     if has_labels(item, self.selector)})
                self._synced[kind].set()
                stream = watch.Watch()  # type: ignore[no-untyped-call]
                self._watches.append(stream)
                try:
                    events = stream.stream(  # type: ignore[no-untyped-call]
                        list_call, self.cluster.namespace, label_selector=text,
                        resource_version=listing.metadata.resource_version, timeout_seconds=WATCH_SECONDS,
                        # and on this side too: a half-open connection must not stall the view for good
                        _request_timeout=(REQUEST_TIMEOUT[0], WATCH_SECONDS + 15))
                    for event in events:
                        self._apply(kind, event["type"], event["object"])
                        if self._stop.is_set():
                            break
                finally:
                    self._watches.remove(stream)
            except ApiException as exc:
                if exc.status == 404:  # the server does not serve this kind (yet): none of it exists
                    self._replace(kind, {})
                    self._synced[kind].set()
                if exc.status != 410:  # 410 Gone: the resourceVersion is too old; list again at once
                    log.warning("watching %s objects in namespace %s: %s", kind, self.cluster.namespace, exc.reason)
                    self._stop.wait(RETRY_SECONDS)
            except Exception as exc:  # noqa: BLE001 - a dropped connection, an unreachable server: list again
                log.warning("watching %s objects in namespace %s: %s", kind, self.cluster.namespace, exc)
                self._stop.wait(RETRY_SECONDS)

    def _replace(self, kind: str, objects: dict[str, Any]) -> None:
        with self._changed:
            self._objects[kind] = objects
            self._changed.notify_all()

    def _apply(self, kind: str, event: str, obj: Any) -> None:
        if not hasattr(obj, "metadata") or not has_labels(obj, self.selector):
            return
        with self._changed:
            if event == "DELETED":
                self._objects[kind].pop(obj.metadata.name, None)
            elif event in ("ADDED", "MODIFIED"):
                self._objects[kind][obj.metadata.name] = obj
            self._changed.notify_all()

"""What a pod's container is doing, as the kubelet last reported it in the pod's status."""

from __future__ import annotations

from typing import Any

# A container waiting for one of these does not start by itself: whatever runs it fails with the
# kubelet's own message.
WONT_START = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                        "CreateContainerConfigError", "CreateContainerError"})


def container_state(pod: Any, container: str) -> Any | None:
    statuses = (pod.status.container_statuses if pod is not None and pod.status else None) or []
    for status in statuses:
        if status.name == container:
            return status.state
    return None


def terminated(pod: Any, container: str) -> tuple[int, str, str] | None:
    """(exit code, reason, message) once the container has ended."""
    state = container_state(pod, container)
    if state is None or state.terminated is None:
        return None
    t = state.terminated
    return int(t.exit_code), t.reason or "", t.message or ""


def waiting(pod: Any, container: str) -> tuple[str, str] | None:
    """(reason, message) while the container waits to start."""
    state = container_state(pod, container)
    if state is None or state.waiting is None:
        return None
    return state.waiting.reason or "", state.waiting.message or ""


def running(pod: Any, container: str) -> bool:
    state = container_state(pod, container)
    return state is not None and state.running is not None


def started(pod: Any, container: str) -> bool:
    """Running, or ended: its image was pulled and its log exists."""
    return running(pod, container) or terminated(pod, container) is not None

"""The Downloading message a training job shows while its image is pulled: kept current, not rewritten
on every retry of a registry that fails fast."""

from __future__ import annotations

import time

from forklift.config import Settings
from forklift.control.models import TrainingJobRow
from forklift.control.runner import PullProgress
from forklift.control.store import JobStore


class CountingStore(JobStore):
    """The real store, counting its writes."""

    writes = 0

    def update(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.writes += 1
        return super().update(*args, **kwargs)


def test_a_retry_storm_writes_the_message_about_once_a_second(tmp_path, database_env):
    store = CountingStore(Settings(home=tmp_path).database_url)
    now = time.time()
    store.insert(TrainingJobRow(name="storm", arn="arn:aws:sagemaker:us-east-1:000000000000:training-job/storm",
                                request={}, status="InProgress", secondary_status="Starting", transitions=[],
                                created_at=now, modified_at=now))
    progress = PullProgress(store, "storm", "registry.example/image:1")
    progress.start("sha256:" + "a" * 64, 1000, "layer")
    for n in range(500):
        progress.retrying(f"registry unavailable (answered 503); retry {n}")
    # The first retry shows at once; the rest within the same second are folded into later writes.
    assert 1 <= store.writes <= 5, store.writes
    row = store.get("storm")
    assert row is not None and "answered 503" in row.transitions[-1]["StatusMessage"], row.transitions

"""Creating a name another writer is creating at that moment, on SQLite and on PostgreSQL: the second
create is told the name exists (JobExists, AlreadyExists: the API's ResourceInUse), never a database error.

The other writer is a transaction this test holds open with the row inserted: the store's own check
does not see it, so its INSERT waits on the name (PostgreSQL's unique index, SQLite's write lock) until
the test commits."""

from __future__ import annotations

import threading
import time

from forklift.config import Settings
from forklift.control.inference.errors import AlreadyExists
from forklift.control.inference.models import ModelRow
from forklift.control.inference.store import InferenceStore
from forklift.control.models import TrainingJobRow
from forklift.control.store import JobExists, JobStore
from forklift.db import session_factory


def job(name: str) -> TrainingJobRow:
    now = time.time()
    return TrainingJobRow(name=name, arn=f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}",
                          request={}, status="InProgress", secondary_status="Starting", transitions=[],
                          created_at=now, modified_at=now)


def model(name: str) -> ModelRow:
    return ModelRow(name=name, arn=f"arn:aws:sagemaker:us-east-1:000000000000:model/{name}", request={},
                    resolved_image="registry.example/m@sha256:" + "a" * 64, resolution_time=0.0,
                    created_at=time.time())


def raced(url: str, theirs, create) -> BaseException | None:
    """Run `create` while a transaction holds `theirs` inserted, then commit it; what `create` raised."""
    failure: list[BaseException] = []

    def attempt() -> None:
        try:
            create()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            failure.append(exc)

    with session_factory(url).begin() as session:
        session.add(theirs)
        session.flush()
        other = threading.Thread(target=attempt)
        other.start()
        other.join(1)  # it waits on the name this transaction holds
    other.join(30)
    assert not other.is_alive()
    return failure[0] if failure else None


def test_a_job_created_elsewhere_meanwhile_is_job_exists(tmp_path, database_env):
    name = "same-name"
    url = Settings(home=tmp_path).database_url
    store = JobStore(url)
    assert isinstance(raced(url, job(name), lambda: store.insert(job(name))), JobExists)
    assert store.names() == [name]


def test_a_model_created_elsewhere_meanwhile_is_already_exists(tmp_path, database_env):
    url = Settings(home=tmp_path).database_url
    store = InferenceStore(url)
    refused = raced(url, model("same-model"), lambda: store.insert(model("same-model"), "model"))
    assert isinstance(refused, AlreadyExists) and "already existing model" in str(refused)
    assert [row.name for row in store.all(ModelRow)] == ["same-model"]

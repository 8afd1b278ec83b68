"""One training job's life, run in a worker thread:

    credentials -> pull (layer progress in SecondaryStatus) -> rootfs -> stage channels and config
    -> start the container -> wait (stop requests, MaxRuntimeInSeconds) -> failure file
    -> pack and upload /opt/ml/model and /opt/ml/output/data -> Completed | Failed | Stopped

Each step is written to the database before it is taken (`phase`), so a restarted server knows
whether to start over (queued/preparing), re-adopt the container (running) or finish the upload
(uploading). The runner never stops a container because the *server* is shutting down.

A stop is seen by every wait before the container starts (`cancel`: the pull, a provider function,
staging), which is given up at once: the job ends Stopped. The container then gets
stop_grace_seconds to exit, and its model is uploaded after a stop (or MaxRuntimeInSeconds), as on
SageMaker, within stop_grace_seconds of the upload's start; a stop that arrives while the upload runs
gives the upload stop_grace_seconds to finish. An upload cut short ends the job Stopped, saying so.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from forklift.cancel import Cancel, Cancelled
from forklift.config import Settings
from forklift.control import containers, outcome, staging, status
from forklift.control.launching import PlatformFailure, TrainingLauncher
from forklift.control.logs import LogPump, job_dir
from forklift.control.metricstore import MetricStore
from forklift.control.models import TrainingJobRow
from forklift.control.pullaudit import record_pull
from forklift.control.scriptmode import SourceCodeError
from forklift.control.settings import ControlSettings
from forklift.control.store import JobStore
from forklift.control.trainingmetrics import TrainingMetrics, definitions_of
from forklift.runtime import ContainerHandle, ExitStatus

log = logging.getLogger(__name__)
POLL = 0.5
# ExitStatus.reason of a container its backend ended at MaxRuntimeInSeconds (a Job's activeDeadlineSeconds)
DEADLINE_EXCEEDED = "deadline-exceeded"


class JobStopped(Exception):
    """A stop was requested before the container started."""


class PullProgress:
    """TransferProgress that rewrites the Downloading message, at most about once a second."""

    def __init__(self, store: JobStore, name: str, image: str):
        self.store, self.name, self.image = store, name, image
        self.sizes: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.finished: set[str] = set()
        self._last = 0.0
        self._retrying: str | None = None  # the registry is failing and being waited out: why

    def start(self, digest: str, size: int, what: str) -> None:
        self.sizes[digest] = size
        self.done.setdefault(digest, 0)

    def advance(self, digest: str, nbytes: int) -> None:
        self.done[digest] = self.done.get(digest, 0) + nbytes
        recovered, self._retrying = self._retrying is not None, None
        self._publish(force=recovered)

    def retrying(self, message: str) -> None:
        # Only the first of a run of retries is shown at once: a retry storm must not rewrite the row each time.
        first, self._retrying = self._retrying is None, message
        self._publish(force=first)

    def finish(self, digest: str, state: str) -> None:
        self.finished.add(digest)
        self.done[digest] = self.sizes.get(digest, 0)
        self._retrying = None
        self._publish(force=len(self.finished) == len(self.sizes))

    def _publish(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 1.0:
            return
        self._last = now
        total, done = sum(self.sizes.values()), sum(self.done.values())
        if self._retrying is not None:
            message = f"Downloading the training image {self.image}: {self._retrying}"
        else:
            message = (f"Downloading the training image {self.image}: {len(self.finished)}/{len(self.sizes)} blobs, "
                       f"{done / 1e6:.1f} of {total / 1e6:.1f} MB")
        self.store.update(self.name, lambda row: status.step(row, "Downloading", message))


class JobRunner:
    def __init__(self, settings: Settings, control: ControlSettings, store: JobStore, launcher: TrainingLauncher,
                 name: str, stop_requested: threading.Event, shutdown: threading.Event):
        self.settings, self.control, self.store, self.launcher = settings, control, store, launcher
        self.name = name
        self.stop_requested = stop_requested
        # the event is the scheduler's; the row holds a stop asked of another server, or before a restart
        self.cancel = Cancel(stop_requested, check=self._stop_asked_in_row)
        self.shutdown = shutdown
        self.directory = job_dir(settings.home, name)
        self.pipes_done = threading.Event()  # tells the Pipe-mode feeders the container has ended

    # -- entry points --------------------------------------------------------------------
    def run(self, handle: ContainerHandle | None = None) -> None:
        """Drive the job to its end from wherever its `phase` says it is."""
        try:
            row = self.store.get(self.name)
            if row is None or status.is_terminal(row):
                return
            if row.phase == "uploading":
                return self._finish(ExitStatus.from_json(row.exit_status or {"code": -1}))
            if handle is None:
                handle = self._prepare_and_start(row)
            exit_status = self._wait(handle)
            if exit_status is not None:
                self._finish(exit_status)
        except JobStopped:
            self._end_stopped_before_start()
        except PlatformFailure as exc:
            self.store.update(self.name, lambda r, reason=str(exc): status.fail(r, reason))
        except Exception as exc:  # noqa: BLE001 - anything unforeseen still ends the job with a reason
            log.exception("training job %s failed", self.name)
            self.store.update(self.name, lambda r, reason=f"InternalServerError: {exc}": status.fail(r, reason))

    # -- before the container ------------------------------------------------------------
    def _stop_asked_in_row(self) -> bool:
        row = self.store.get(self.name)
        return row is not None and bool(row.stop_reason)

    def _check_stop(self) -> None:
        if self.stop_requested.is_set() or self._stop_asked_in_row():
            raise JobStopped()

    def _prepare_and_start(self, row: TrainingJobRow) -> ContainerHandle:
        request = row.request
        algorithm = request["AlgorithmSpecification"]
        image = algorithm["TrainingImage"]
        def preparing(r: TrainingJobRow) -> None:
            r.phase = "preparing"
            status.step(r, "Downloading", f"Downloading the training image {image}")
        self.store.update(self.name, preparing)
        self._check_stop()
        try:
            obtained = self.launcher.obtain(row, PullProgress(self.store, self.name, image), self.cancel)
        except Cancelled as exc:
            record_pull(self.settings, owner=row.created_by, resource=row.arn, image=image, error=exc)
            raise JobStopped() from exc
        except PlatformFailure as exc:
            record_pull(self.settings, owner=row.created_by, resource=row.arn, image=image,
                        error=exc.__cause__ or exc)
            if self.cancel.is_set():  # the failure a stop caused on its way (a cluster's answer, say)
                raise JobStopped() from exc
            raise
        record_pull(self.settings, owner=row.created_by, resource=row.arn, image=image, digest=obtained.digest)
        resolved = outcome.resolved_reference(image, obtained.digest)
        self._check_stop()
        def downloaded(r: TrainingJobRow) -> None:
            r.resolved_image = resolved
            status.step(r, "Downloading", f"Training image {resolved} downloaded; downloading input data")
        self.store.update(self.name, downloaded)
        instance_type = containers.instance_type(request)
        try:
            staging.write_config(self.directory, request, instance_type)
            # on a thread of its own: a download stalled inside a store's read is given up, not waited for
            staged = self.cancel.call(lambda: staging.stage_inputs(self.directory, request, self.settings,
                                                                   self.cancel), name=f"staging-{self.name}")
        except Cancelled:
            raise JobStopped() from None
        except Exception as exc:
            if self.cancel.is_set():
                raise JobStopped() from exc
            if isinstance(exc, SourceCodeError):
                raise PlatformFailure(f"ClientError: {exc}") from exc
            raise PlatformFailure(f"ClientError: input data could not be downloaded: {exc}") from exc
        self._check_stop()
        container = containers.training_container(self.settings, row, self.directory, resolved, staged.mounts,
                                                  pipe_channels=tuple(str(fifo) for fifo, _ in staged.pipes))
        def running(r: TrainingJobRow) -> None:
            r.container_name, r.phase = container.name, "running"
        self.store.update(self.name, running)
        handle = self.launcher.start(container, obtained)
        for fifo, source in staged.pipes:
            staging.PipeFeeder(fifo, source, self.pipes_done).start()
        now = time.time()
        note = outcome.volume_note(request) + outcome.instance_note(instance_type)

        def training(r: TrainingJobRow) -> None:
            r.training_start = now
            r.log_stream = f"{self.name}/algo-1-{int(now)}"
            status.step(r, "Training", f"Training image download completed. Training in progress.{note}", now)
        self.store.update(self.name, training)
        return handle

    # -- while it runs ---------------------------------------------------------------------
    def _wait(self, handle: ContainerHandle) -> ExitStatus | None:
        """The container's exit status, or None when the server is shutting down (it keeps running)."""
        pump = LogPump(self.directory, [handle.stdout_path, handle.stderr_path], self.control.log_limits,
                       self._metrics())
        pump_done = threading.Event()
        threading.Thread(target=pump.run, args=(pump_done,), daemon=True, name=f"logs-{self.name}").start()
        try:
            while True:
                exit_status = handle.wait(timeout=POLL)
                if exit_status is not None:
                    break
                if self.shutdown.is_set():
                    return None
                reason = self._stop_reason()
                if reason:
                    exit_status = handle.stop(grace=self.control.stop_grace_seconds)
                    break
            handle.stop(grace=1.0)  # after the exit this only releases the container's resources
        finally:
            pump_done.set()
            self.pipes_done.set()
        pump.drain(final=True)

        def ended(r: TrainingJobRow) -> None:
            if exit_status.reason == DEADLINE_EXCEEDED and not r.stop_reason:
                r.stop_reason = "MaxRuntimeExceeded"  # the backend enforced MaxRuntimeInSeconds itself
            r.exit_status = exit_status.to_json()
            r.training_end = time.time()
            r.phase = "uploading"
        self.store.update(self.name, ended)
        return exit_status

    def _metrics(self) -> TrainingMetrics | None:
        """What turns the job's log lines into its MetricDefinitions' points (None: it defines none);
        after a restart it goes on from the points already stored."""
        row = self.store.get(self.name)
        definitions = definitions_of(row.request) if row is not None else []
        if not definitions:
            return None
        try:
            return TrainingMetrics(MetricStore(self.settings.database_url), self.name, definitions)
        except Exception:  # noqa: BLE001 - the container runs already: a job without metrics, not one left running
            log.exception("training job %s: its MetricDefinitions cannot be applied; it runs without metrics",
                          self.name)
            return None

    def _stop_reason(self) -> str | None:
        row = self.store.get(self.name)
        if row is None:
            return None
        if row.stop_reason:
            return row.stop_reason
        limit = (row.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        if limit and row.training_start and time.time() - row.training_start >= int(limit):
            def exceeded(r: TrainingJobRow) -> None:
                r.stop_reason = "MaxRuntimeExceeded"
                status.step(r, "Stopping", f"Stopping: MaxRuntimeInSeconds ({limit} s) exceeded")
            self.store.update(self.name, exceeded)
            return "MaxRuntimeExceeded"
        return None

    # -- after it ended --------------------------------------------------------------------
    def _finish(self, exit_status: ExitStatus) -> None:
        row = self.store.get(self.name)
        failure = None if row.stop_reason else outcome.failure_reason(self.directory, exit_status, row.request)
        artifacts = None
        cut_short = None
        if failure is None:
            self.store.update(self.name, lambda r: status.step(r, "Uploading", "Uploading generated training model"))
            # A stop that ended the container lets its model upload, as on SageMaker, for stop_grace_seconds
            # from the upload's start (a silent S3 must not keep the job Stopping for its timeouts); one
            # that arrives during the upload gives it stop_grace_seconds from the stop.
            stop = _already_stopped() if row.stop_reason else self.cancel
            grace = self.control.stop_grace_seconds
            upload = _Upload(self.directory, row, self.settings)
            try:
                artifacts = stop.call(upload.run, grace=grace, name=f"upload-{self.name}")
            except Cancelled:
                artifacts = upload.give_up()
                if artifacts is None:
                    since = "of its start" if row.stop_reason else "of the stop"
                    cut_short = (f"the model upload did not finish within stop_grace_seconds "
                                 f"({grace:g} s) {since}")
            except Exception as exc:  # noqa: BLE001 - any failed upload fails the job with its reason
                failure = f"ClientError: uploading the model to {row.request['OutputDataConfig']['S3OutputPath']} " \
                          f"failed: {exc}"

        def final(r: TrainingJobRow) -> None:
            r.model_artifacts = artifacts or r.model_artifacts
            if failure is not None:
                return status.fail(r, failure)
            r.phase = "done"
            if r.stop_reason:
                message = ("Training job stopped: MaxRuntimeInSeconds exceeded" if r.stop_reason ==
                           "MaxRuntimeExceeded" else "Training job stopped")
                status.step(r, r.stop_reason, f"{message}: {cut_short}" if cut_short else message)
            else:
                status.step(r, "Completed", "Training job completed")
        self.store.update(self.name, final)

    def _end_stopped_before_start(self) -> None:
        def stopped(r: TrainingJobRow) -> None:
            r.phase = "done"
            r.stop_reason = r.stop_reason or "Stopped"
            status.step(r, r.stop_reason, "Training job stopped before its container started")
        self.store.update(self.name, stopped)


def _already_stopped() -> Cancel:
    """A Cancel set from the start: what it runs gets its grace measured from now."""
    stopped = Cancel()
    stopped.set()
    return stopped


class _Upload:
    """The model upload on its own thread, and what becomes of it once the job stops waiting: an upload
    that ends after that is deleted again (the job says the upload did not finish, and so it is: S3
    holds no model the job does not report), unless it had ended before the job gave up, which then
    reports it after all."""

    def __init__(self, directory: Path, row: TrainingJobRow, settings: Settings) -> None:
        self.directory, self.row, self.settings = directory, row, settings
        self.given_up = threading.Event()
        self._lock = threading.Lock()
        self._uploaded: str | None = None

    def run(self) -> str:
        uri = outcome.upload_outputs(self.directory, self.row, self.settings, Cancel(self.given_up))
        with self._lock:
            late = self.given_up.is_set()
            if not late:
                self._uploaded = uri
        if late:
            outcome.remove_outputs(self.row, self.settings)
            raise Cancelled()
        return uri

    def give_up(self) -> str | None:
        """Stop waiting; the model URI when the upload had ended all the same."""
        with self._lock:
            self.given_up.set()
            return self._uploaded

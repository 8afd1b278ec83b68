"""The job's /opt/ml tree on the host: config files, input channels, Pipe FIFOs, output dirs.

    $FORKLIFT_HOME/jobs/<job>/
        input/config/{hyperparameters,resourceconfig,inputdataconfig}.json  -> /opt/ml/input/config (ro)
        input/data/<channel>/              File mode                          -> /opt/ml/input/data/<channel>
        input/data/<channel>_0             Pipe mode: a FIFO, fed by a thread while the job runs
        pipe/<channel>/                    Pipe mode: the staged objects the feeder streams
        model/  output/  output/data/      -> /opt/ml/model, /opt/ml/output
        code/                              script mode: sagemaker_submit_directory unpacked -> /opt/ml/code
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from forklift.cancel import NEVER, Cancel
from forklift.config import Settings
from forklift.control import scriptmode
from forklift.errors import DiskFull, is_disk_full
from forklift.runtime import Mount
from forklift.storage import stage_channel

log = logging.getLogger(__name__)
HOST = "algo-1"


@dataclass
class StagedInput:
    mounts: list[Mount] = field(default_factory=list)
    pipes: list[tuple[Path, Path]] = field(default_factory=list)  # (fifo, directory of its data)


def job_paths(directory: Path) -> dict[str, Path]:
    return {"config": directory / "input" / "config", "data": directory / "input" / "data",
            "pipe": directory / "pipe", "model": directory / "model", "output": directory / "output",
            "container": directory / "container", "code": directory / "code"}


def write_config(directory: Path, request: dict, instance_type: str | None) -> None:
    config = job_paths(directory)["config"]
    config.mkdir(parents=True, exist_ok=True)
    hyper = scriptmode.container_hyperparameters(
        {str(k): str(v) for k, v in (request.get("HyperParameters") or {}).items()})
    resource = {"current_host": HOST, "hosts": [HOST], "network_interface_name": "eth0",
                "current_instance_type": instance_type or "local",
                "current_group_name": "homogeneousCluster",
                "instance_groups": [{"instance_group_name": "homogeneousCluster",
                                     "instance_type": instance_type or "local", "hosts": [HOST]}]}
    job_mode = (request.get("AlgorithmSpecification") or {}).get("TrainingInputMode", "File")
    channels = {}
    for channel in request.get("InputDataConfig") or []:
        mode = channel.get("InputMode") or job_mode
        s3 = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        entry = {"TrainingInputMode": "File" if mode == "FastFile" else mode,
                 "S3DistributionType": s3.get("S3DataDistributionType", "FullyReplicated"),
                 "RecordWrapperType": channel.get("RecordWrapperType", "None")}
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        channels[channel["ChannelName"]] = entry
    for name, data in (("hyperparameters.json", hyper), ("resourceconfig.json", resource),
                       ("inputdataconfig.json", channels)):
        (config / name).write_text(json.dumps(data, indent=1))


def input_mode(request: dict, channel: dict) -> str:
    """The channel's InputMode, else the job's TrainingInputMode, else File."""
    return channel.get("InputMode") or (request.get("AlgorithmSpecification") or {}).get("TrainingInputMode", "File")


def fastfile_mount(directory: Path, channel: str) -> Mount:
    """Where a FastFile channel staged into `directory` is mounted: read-only, as SageMaker's FastFile mounts are."""
    return Mount(job_paths(directory)["data"] / channel, f"/opt/ml/input/data/{channel}", read_only=True)


def fastfile_mounts(directory: Path, request: dict) -> list[Mount]:
    """The mounts `stage_inputs` returns for `request`'s channels, known without staging them."""
    return [fastfile_mount(directory, channel["ChannelName"]) for channel in request.get("InputDataConfig") or []
            if input_mode(request, channel) == "FastFile"]


def stage_inputs(directory: Path, request: dict, settings: Settings, cancel: Cancel = NEVER) -> StagedInput:
    """Download every channel; returns the extra mounts (FastFile, read-only) and the Pipe FIFOs. After a
    stop (`cancel`) no further object is begun.

    Script mode's code archive (`scriptmode`) is unpacked into `code/` first; its failure is a
    `SourceCodeError`. A channel that fails takes what was staged with it: a disk that filled gets its
    space back for the next job (and the error says so, `DiskFull`).
    """
    paths = job_paths(directory)
    try:
        code = scriptmode.training_code_uri(request)
        if code is not None:
            scriptmode.stage_code(code, paths["code"], settings, scriptmode.HYPERPARAMETER, cancel)
        return _stage(paths, request, settings, directory, cancel)
    except Exception as exc:
        for partial in (paths["data"], paths["pipe"], paths["code"]):
            shutil.rmtree(partial, ignore_errors=True)
        if is_disk_full(exc):
            raise DiskFull(settings.home) from exc
        raise


def _stage(paths: dict[str, Path], request: dict, settings: Settings, directory: Path, cancel: Cancel) -> StagedInput:
    paths["data"].mkdir(parents=True, exist_ok=True)
    staged = StagedInput()
    for channel in request.get("InputDataConfig") or []:
        name = channel["ChannelName"]
        mode = input_mode(request, channel)
        if mode == "Pipe":
            source = stage_channel(channel["DataSource"], paths["pipe"] / name, input_mode="File", settings=settings,
                                   cancel=cancel)
            fifo = paths["data"] / f"{name}_0"
            if not fifo.exists():
                os.mkfifo(fifo, 0o666)
            staged.pipes.append((fifo, source.path))
            continue
        stage_channel(channel["DataSource"], paths["data"] / name, input_mode=mode, settings=settings, cancel=cancel)
        if mode == "FastFile":
            staged.mounts.append(fastfile_mount(directory, name))
    for key in ("model", "output"):
        paths[key].mkdir(parents=True, exist_ok=True)
    (paths["output"] / "data").mkdir(exist_ok=True)
    return staged


class PipeFeeder:
    """Streams a channel's files, in key order, into its FIFO once the container opens it."""

    def __init__(self, fifo: Path, source: Path, done: threading.Event):
        self.fifo, self.source, self.done = fifo, source, done

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True, name=f"pipe-{self.fifo.name}")
        thread.start()
        return thread

    def _open(self) -> int | None:
        # Non-blocking until a reader appears (ENXIO before that), so a job that never reads its
        # pipe does not leave this thread stuck forever.
        while not self.done.is_set():
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.1)
                continue
            os.set_blocking(fd, True)
            return fd
        return None

    def _run(self) -> None:
        try:
            fd = self._open()
            if fd is None:
                return
            with os.fdopen(fd, "wb") as out:
                for path in sorted(p for p in self.source.rglob("*") if p.is_file()):
                    with open(path, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)
        except BrokenPipeError:
            log.info("pipe %s: the reader closed it early", self.fifo)
        except OSError as exc:
            log.warning("pipe %s: %s", self.fifo, exc)

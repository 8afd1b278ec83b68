"""`forklift ps`: what runs now, at a glance.

The server of this FORKLIFT_HOME (its record), the training jobs and endpoints the API reports as
active, and every forklift container on this machine (training jobs, endpoint instances, `forklift
run`), read from the runtime itself so a container whose server is down still shows.
"""

from __future__ import annotations

import os
from datetime import datetime

import click

from forklift import labels
from forklift.cli.output import emit_json, output_option, print_table

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.


def _since(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch).astimezone() if epoch else None


def _server(home) -> tuple[dict | None, str | None]:
    from forklift.background import answers
    from forklift.serverfile import live_record

    record = live_record(home)
    if record is None:
        return None, None
    up = answers(record.url)
    return ({"Kind": "server", "Name": record.url, "Status": "running" if up else "not answering",
             "Pid": record.pid, "Address": None, "Since": _since(record.started),
             "Detail": f"FORKLIFT_HOME={home}"}, record.url if up else None)


def _containers() -> tuple[list[dict], str | None]:
    from forklift.runtime.runc import RuncRuntime

    if os.geteuid() != 0:
        return [], "containers are listed for root only (runc's state is root's)"
    runtime = RuncRuntime()
    found = []
    for name in runtime.list():
        handle = runtime.adopt(name)
        if handle is None or not handle.is_running():
            continue
        tags = handle.labels
        if labels.TRAINING_JOB in tags:
            kind, owner, detail = "job", tags[labels.TRAINING_JOB], f"container {handle.name}"
        elif labels.ENDPOINT in tags:
            kind, owner = "endpoint", f"{tags[labels.ENDPOINT]}/{tags.get(labels.VARIANT, '?')}"
            detail = f"instance {handle.name}"
        else:
            kind, owner, detail = "run", handle.name, tags.get(labels.RUN, "")
        found.append({"Kind": kind, "Name": owner, "Status": "running", "Pid": handle.pid,
                      "Address": handle.address, "Since": _since(handle.created), "Detail": detail})
    return found, None


def _api_rows(url: str, containers: list[dict]) -> list[dict]:
    """Active jobs and endpoints from the API; a job's container row gets the job's status."""
    from forklift.jsonclient import JsonClient

    sm = JsonClient("sagemaker", url)
    rows = []
    by_job = {c["Name"]: c for c in containers if c["Kind"] == "job"}
    for status in ("InProgress", "Stopping"):
        for page in sm.pages("ListTrainingJobs", StatusEquals=status):
            for job in page["TrainingJobSummaries"]:
                state = f"{job['TrainingJobStatus']} / {job.get('SecondaryStatus', '')}".rstrip(" /")
                if job["TrainingJobName"] in by_job:
                    by_job[job["TrainingJobName"]]["Status"] = state
                else:  # not started yet (pending, pulling, staging) or on another machine
                    rows.append({"Kind": "job", "Name": job["TrainingJobName"], "Status": state, "Pid": None,
                                 "Address": None, "Since": job["CreationTime"], "Detail": "no container yet"})
    instances = {}
    for c in containers:
        if c["Kind"] == "endpoint":
            instances.setdefault(c["Name"].split("/")[0], []).append(c)
    for page in sm.pages("ListEndpoints"):
        for endpoint in page["Endpoints"]:
            running = instances.get(endpoint["EndpointName"], [])
            for c in running:
                c["Status"] = endpoint["EndpointStatus"]
            if not running and endpoint["EndpointStatus"] != "Failed":
                rows.append({"Kind": "endpoint", "Name": endpoint["EndpointName"], "Status": endpoint["EndpointStatus"],
                             "Pid": None, "Address": None, "Since": endpoint["CreationTime"],
                             "Detail": "no instance running"})
    return rows


@click.command()
@output_option
def ps(output: str) -> None:
    """What runs now: the server, training jobs, endpoint instances and `forklift run` containers."""
    from forklift.config import forklift_home

    home = forklift_home()
    server, url = _server(home)
    containers, note = _containers()
    rows = ([server] if server else []) + containers
    if url:
        rows += _api_rows(url, containers)
    if output == "json":
        emit_json({"Processes": rows})
        return
    if server is None:
        click.echo(f"no forklift server is running for FORKLIFT_HOME={home}", err=True)
    print_table(("KIND", "NAME", "STATUS", "PID", "ADDRESS", "SINCE", "DETAIL"),
                [(r["Kind"], r["Name"], r["Status"], str(r["Pid"] or "-"), r["Address"] or "-",
                  r["Since"].astimezone().strftime("%Y-%m-%d %H:%M:%S") if r["Since"] else "-", r["Detail"])
                 for r in rows])
    if note:
        click.echo(f"note: {note}", err=True)

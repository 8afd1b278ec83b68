"""`forklift endpoints list|show|invoke|logs|delete`: real-time endpoints, through the running server.

Like `forklift jobs`, the commands call `forklift serve` with boto3 (found through
`$FORKLIFT_HOME/server.json`, or `--endpoint-url`), so they show exactly what the API shows;
`logs` reads the endpoint's CloudWatch log group `/aws/sagemaker/Endpoints/<name>` (the
`fleet-events` stream and one `<variant>/<instance>` stream per container).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from forklift.cli.errors import handle_errors
from forklift.cli.jobs import _client, _when, endpoint_option
from forklift.logsclient import read_forward

LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
STATUS_STYLE = {"InService": "green", "Failed": "red", "Creating": "cyan", "Updating": "cyan",
                "Deleting": "yellow"}


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


@click.group()
def endpoints() -> None:
    """Real-time inference endpoints: list, show, invoke, logs, delete."""


@endpoints.command("list")
@click.option("--status", "status_equals", type=click.Choice(list(STATUS_STYLE)))
@click.option("--name-contains")
@endpoint_option
@handle_errors
def list_endpoints(status_equals: str | None, name_contains: str | None, endpoint_url: str | None) -> None:
    """Endpoints, newest first."""
    from rich.console import Console
    from rich.table import Table

    kwargs = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if status_equals:
        kwargs["StatusEquals"] = status_equals
    if name_contains:
        kwargs["NameContains"] = name_contains
    table = Table("NAME", "STATUS", "CREATED", "MODIFIED", box=None)
    for page in _client("sagemaker", endpoint_url).get_paginator("list_endpoints").paginate(**kwargs):
        for e in page["Endpoints"]:
            table.add_row(e["EndpointName"], _status(e["EndpointStatus"]), _when(e["CreationTime"]),
                          _when(e["LastModifiedTime"]))
    Console().print(table)


@endpoints.command("show")
@click.argument("name")
@endpoint_option
@handle_errors
def show(name: str, endpoint_url: str | None) -> None:
    """An endpoint's status, variants, images and failure reason."""
    from rich.console import Console, Group
    from rich.table import Table

    e = _client("sagemaker", endpoint_url).describe_endpoint(EndpointName=name)
    about = Table(box=None, show_header=False)
    rows = [("Name", e["EndpointName"]), ("ARN", e["EndpointArn"]), ("Status", _status(e["EndpointStatus"])),
            ("Config", e.get("EndpointConfigName", "-")), ("Created", _when(e["CreationTime"])),
            ("Modified", _when(e["LastModifiedTime"]))]
    if e.get("FailureReason"):
        rows.append(("Failure", f"[red]{e['FailureReason']}[/]"))
    for key, value in rows:
        about.add_row(f"[bold]{key}[/]", str(value))
    variants = Table("VARIANT", "WEIGHT", "INSTANCES", "STATUS", box=None)
    images = []
    for v in e.get("ProductionVariants", []):
        status = "; ".join(f"{s['Status']}: {s.get('StatusMessage', '')}" for s in v.get("VariantStatus", []))
        variants.add_row(v["VariantName"], f"{v.get('CurrentWeight', 0):g}",
                         f"{v.get('CurrentInstanceCount', 0)}/{v.get('DesiredInstanceCount', 0)}", status or "-")
        images += [f"{v['VariantName']}: {d.get('SpecifiedImage')} -> {d.get('ResolvedImage')}"
                   for d in v.get("DeployedImages", [])]
    Console().print(Group(about, "", variants))
    for line in images:  # never cut: the digest is what one copies
        click.echo(f"  image {line}")


def _read_body(body: str) -> bytes:
    if body == "@-":
        return sys.stdin.buffer.read()
    if body.startswith("@"):
        return Path(body[1:]).read_bytes()
    return body.encode()


@endpoints.command("invoke")
@click.argument("name")
@click.option("--body", required=True, help="The payload: text, @FILE, or @- for stdin.")
@click.option("--content-type", help="Content-Type of the payload (default: application/octet-stream).")
@click.option("--accept", help="The Accept header for the answer.")
@click.option("--target-variant", help="Send to this production variant instead of choosing by weight.")
@click.option("--custom-attributes", help="X-Amzn-SageMaker-Custom-Attributes.")
@endpoint_option
@handle_errors
def invoke(name: str, body: str, content_type: str | None, accept: str | None, target_variant: str | None,
           custom_attributes: str | None, endpoint_url: str | None) -> None:
    """Send one request to an endpoint and print the answer (raw bytes on stdout)."""
    kwargs = {"ContentType": content_type, "Accept": accept, "TargetVariant": target_variant,
              "CustomAttributes": custom_attributes}
    runtime = _client("sagemaker-runtime", endpoint_url)
    try:
        response = runtime.invoke_endpoint(EndpointName=name, Body=_read_body(body),
                                           **{k: v for k, v in kwargs.items() if v is not None})
    except runtime.exceptions.ModelError as exc:
        original = exc.response.get("OriginalMessage", "")
        raise click.ClickException(f"ModelError: the container answered {exc.response.get('OriginalStatusCode')}: "
                                   f"{original}") from None
    click.echo(f"variant {response['InvokedProductionVariant']}, {response['ContentType']}", err=True)
    sys.stdout.buffer.write(response["Body"].read())
    sys.stdout.buffer.write(b"\n")


@endpoints.command("logs")
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until interrupted.")
@endpoint_option
@handle_errors
def logs(name: str, follow: bool, endpoint_url: str | None) -> None:
    """The endpoint's log group: the fleet's events and each instance's output, in time order."""
    cw = _client("logs", endpoint_url)
    group = f"{LOG_GROUP_PREFIX}{name}"
    tokens: dict[str, str | None] = {}
    while True:
        try:
            streams = [s["logStreamName"] for page in cw.get_paginator("describe_log_streams").paginate(
                logGroupName=group) for s in page["logStreams"]]
        except cw.exceptions.ResourceNotFoundException:
            raise click.ClickException(f"no logs for endpoint {name} (no log group {group})") from None
        fresh = []
        for stream in streams:
            events, tokens[stream] = read_forward(cw, group, stream, tokens.get(stream))
            fresh += [(e["timestamp"], stream, e["message"]) for e in events]
        for timestamp, stream, message in sorted(fresh, key=lambda e: e[0]):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp / 1000))
            click.echo(f"{stamp}.{timestamp % 1000:03d}Z [{stream}] {message}")
        if not follow:
            return
        time.sleep(1)


@endpoints.command("delete")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Return once the endpoint is gone.")
@endpoint_option
@handle_errors
def delete(name: str, wait: bool, endpoint_url: str | None) -> None:
    """Delete an endpoint (its instances are stopped)."""
    sm = _client("sagemaker", endpoint_url)
    sm.delete_endpoint(EndpointName=name)
    if wait:
        sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 600})
    click.echo(f"endpoint {name} {'deleted' if wait else 'is being deleted'}")

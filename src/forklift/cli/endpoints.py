"""`forklift endpoints list|show|invoke|logs|delete`: real-time endpoints, through the running server.

Like `forklift jobs`, the commands call `forklift serve`'s API (found as `forklift.serverfile`
says), so they show exactly what the API shows (`-o json`: the API's shapes); `logs` reads the
endpoint's CloudWatch log group `/aws/sagemaker/Endpoints/<name>` (the `fleet-events` stream and
one `<variant>/<instance>` stream per container).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from forklift.cli.apiclient import client, endpoint_option
from forklift.cli.groups import Group
from forklift.cli.jobs import when
from forklift.cli.output import api_shape, emit_json, output_option, print_fields, print_table
from forklift.cli.owners import created_by
from forklift.jsonclient import ApiError
from forklift.logsclient import read_forward

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.

LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
DELETE_WAIT = 600.0
STATUS_STYLE = {"InService": "green", "Failed": "red", "Creating": "cyan", "Updating": "cyan",
                "Deleting": "yellow"}


def _status(status: str) -> tuple[str, str]:
    return status, STATUS_STYLE.get(status, "white")


@click.group(cls=Group)
def endpoints() -> None:
    """Real-time inference endpoints: list, show, invoke, logs, delete."""


@endpoints.command("list")
@click.option("--status", "status_equals", type=click.Choice(list(STATUS_STYLE)))
@click.option("--name-contains")
@output_option
@endpoint_option
def list_endpoints(status_equals: str | None, name_contains: str | None, output: str,
                   endpoint_url: str | None) -> None:
    """Endpoints, newest first."""
    kwargs = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if status_equals:
        kwargs["StatusEquals"] = status_equals
    if name_contains:
        kwargs["NameContains"] = name_contains
    found = [e for page in client("sagemaker", endpoint_url).pages("ListEndpoints", **kwargs)
             for e in page["Endpoints"]]
    if output == "json":
        emit_json({"Endpoints": found})
        return
    print_table(("NAME", "STATUS", "CREATED", "MODIFIED"),
                [(e["EndpointName"], _status(e["EndpointStatus"]), when(e["CreationTime"]),
                  when(e["LastModifiedTime"])) for e in found])


@endpoints.command("show")
@click.argument("name")
@output_option
@endpoint_option
def show(name: str, output: str, endpoint_url: str | None) -> None:
    """An endpoint's status, variants, images and failure reason (`-o json`: DescribeEndpoint)."""
    e = client("sagemaker", endpoint_url).describe_endpoint(EndpointName=name)
    if output == "json":
        emit_json(api_shape(e))
        return
    fields = [("Name", e["EndpointName"]), ("ARN", e["EndpointArn"]), ("Status", _status(e["EndpointStatus"])),
              ("Config", e.get("EndpointConfigName", "-")), ("Created", when(e["CreationTime"])),
              ("Created by", created_by("endpoint", e["EndpointArn"])),
              ("Modified", when(e["LastModifiedTime"]))]
    if e.get("FailureReason"):
        fields.append(("Failure", (e["FailureReason"], "red")))
    print_fields(fields)
    click.echo()
    rows, images = [], []
    for v in e.get("ProductionVariants", []):
        status = "; ".join(f"{s['Status']}: {s.get('StatusMessage', '')}" for s in v.get("VariantStatus", []))
        rows.append((v["VariantName"], f"{v.get('CurrentWeight', 0):g}",
                     f"{v.get('CurrentInstanceCount', 0)}/{v.get('DesiredInstanceCount', 0)}", status or "-"))
        images += [f"{v['VariantName']}: {d.get('SpecifiedImage')} -> {d.get('ResolvedImage')}"
                   for d in v.get("DeployedImages", [])]
    print_table(("VARIANT", "WEIGHT", "INSTANCES", "STATUS"), rows)
    for line in images:  # never cut: the digest is what one copies
        click.echo(f"  image {line}")


def _read_body(body: str) -> bytes:
    if body == "@-":
        return sys.stdin.buffer.read()
    if body.startswith("@"):
        try:
            return Path(body[1:]).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {body[1:]}: {exc.strerror}", param_hint="--body") from None
    return body.encode()


@endpoints.command("invoke")
@click.argument("name")
@click.option("--body", required=True, help="The payload: text, @FILE, or @- for stdin.")
@click.option("--content-type", help="Content-Type of the payload (default: application/octet-stream).")
@click.option("--accept", help="The Accept header for the answer.")
@click.option("--target-variant", help="Send to this production variant instead of choosing by weight.")
@click.option("--custom-attributes", help="X-Amzn-SageMaker-Custom-Attributes.")
@endpoint_option
def invoke(name: str, body: str, content_type: str | None, accept: str | None, target_variant: str | None,
           custom_attributes: str | None, endpoint_url: str | None) -> None:
    """Send one request to an endpoint and print the answer (raw bytes on stdout)."""
    from forklift.cli.apiclient import server_url
    from forklift.jsonclient import invoke_endpoint

    headers = {"Content-Type": content_type or "application/octet-stream", "Accept": accept,
               "X-Amzn-SageMaker-Target-Variant": target_variant,
               "X-Amzn-SageMaker-Custom-Attributes": custom_attributes}
    answer = invoke_endpoint(server_url(endpoint_url), name, _read_body(body),
                             {k: v for k, v in headers.items() if v is not None})
    click.echo(f"variant {answer.variant}, {answer.content_type}", err=True)
    sys.stdout.buffer.write(answer.body)
    sys.stdout.buffer.write(b"\n")


@endpoints.command("logs")
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until interrupted.")
@endpoint_option
def logs(name: str, follow: bool, endpoint_url: str | None) -> None:
    """The endpoint's log group: the fleet's events and each instance's output, in time order."""
    cw = client("logs", endpoint_url)
    group = f"{LOG_GROUP_PREFIX}{name}"
    tokens: dict[str, str | None] = {}
    while True:
        try:
            streams = [s["logStreamName"] for page in cw.pages("DescribeLogStreams", logGroupName=group)
                       for s in page["logStreams"]]
        except ApiError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
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
def delete(name: str, wait: bool, endpoint_url: str | None) -> None:
    """Delete an endpoint (its instances are stopped)."""
    sm = client("sagemaker", endpoint_url)
    sm.delete_endpoint(EndpointName=name)
    deadline = time.monotonic() + DELETE_WAIT
    while wait:
        try:
            sm.describe_endpoint(EndpointName=name)
        except ApiError as exc:
            if exc.code != "ValidationException":
                raise
            break
        if time.monotonic() > deadline:
            raise click.ClickException(f"endpoint {name} was still being deleted after {DELETE_WAIT:g} s")
        time.sleep(0.5)
    click.echo(f"endpoint {name} {'deleted' if wait else 'is being deleted'}")

"""`forklift models list|show|delete`: the models endpoints are deployed from, through the server."""

from __future__ import annotations

import click

from forklift.cli.apiclient import client, endpoint_option
from forklift.cli.groups import Group
from forklift.cli.jobs import when
from forklift.cli.output import api_shape, emit_json, output_option, print_fields, print_table
from forklift.cli.owners import created_by


@click.group(cls=Group)
def models() -> None:
    """Models (an image, its model data and environment): list, show, delete."""


@models.command("list")
@click.option("--name-contains")
@output_option
@endpoint_option
def list_models(name_contains: str | None, output: str, endpoint_url: str | None) -> None:
    """Models, newest first."""
    kwargs = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if name_contains:
        kwargs["NameContains"] = name_contains
    found = [m for page in client("sagemaker", endpoint_url).pages("ListModels", **kwargs)
             for m in page["Models"]]
    if output == "json":
        emit_json({"Models": found})
        return
    print_table(("NAME", "CREATED"), [(m["ModelName"], when(m["CreationTime"])) for m in found])


@models.command("show")
@click.argument("name")
@output_option
@endpoint_option
def show(name: str, output: str, endpoint_url: str | None) -> None:
    """A model's image, model data and role (`-o json`: the whole DescribeModel response)."""
    model = client("sagemaker", endpoint_url).describe_model(ModelName=name)
    if output == "json":
        emit_json(api_shape(model))
        return
    containers = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else model.get("Containers", [])
    fields = [("Name", model["ModelName"]), ("ARN", model["ModelArn"]), ("Created", when(model["CreationTime"])),
              ("Created by", created_by("model", model["ModelArn"])),
              ("Role", model.get("ExecutionRoleArn", "-"))]
    for number, container in enumerate(containers, 1):
        label = "" if len(containers) == 1 else f" {number}"
        access = (container.get("ImageConfig") or {}).get("RepositoryAccessMode", "Platform")
        fields += [(f"Image{label}", f"{container.get('Image', '-')} ({access} access)"),
                   (f"Model data{label}", container.get("ModelDataUrl", "-")),
                   (f"Environment{label}", ", ".join(sorted(container.get("Environment") or {})) or "-")]
    print_fields(fields)


@models.command("delete")
@click.argument("name")
@endpoint_option
def delete(name: str, endpoint_url: str | None) -> None:
    """Delete a model (endpoints already running from it keep running)."""
    client("sagemaker", endpoint_url).delete_model(ModelName=name)
    click.echo(f"model {name} deleted")

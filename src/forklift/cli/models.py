"""`forklift models list|show|delete`: the models endpoints are deployed from, through the server."""

from __future__ import annotations

import json

import click

from forklift.cli.errors import handle_errors
from forklift.cli.jobs import _client, _when, endpoint_option


@click.group()
def models() -> None:
    """Models (an image, its model data and environment): list, show, delete."""


@models.command("list")
@click.option("--name-contains")
@endpoint_option
@handle_errors

def list_models(name_contains: str | None, endpoint_url: str | None) -> None:
    """Models, newest first."""
    from rich.console import Console
    from rich.table import Table

    kwargs = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if name_contains:
        kwargs["NameContains"] = name_contains
    table = Table("NAME", "CREATED", box=None)
    for page in _client("sagemaker", endpoint_url).get_paginator("list_models").paginate(**kwargs):
        for m in page["Models"]:
            table.add_row(m["ModelName"], _when(m["CreationTime"]))
    Console().print(table)


@models.command("show")
@click.argument("name")
@endpoint_option
@handle_errors

def show(name: str, endpoint_url: str | None) -> None:
    """A model's definition, as DescribeModel returns it (JSON)."""
    model = _client("sagemaker", endpoint_url).describe_model(ModelName=name)
    model.pop("ResponseMetadata", None)
    click.echo(json.dumps(model, indent=2, default=str))


@models.command("delete")
@click.argument("name")
@endpoint_option
@handle_errors

def delete(name: str, endpoint_url: str | None) -> None:
    """Delete a model (endpoints already running from it keep running)."""
    _client("sagemaker", endpoint_url).delete_model(ModelName=name)
    click.echo(f"model {name} deleted")

"""`forklift k8s render`: the Kubernetes objects forklift applies (or would apply) for a training job
or an endpoint, as the server that owns it renders them with its `[kubernetes]` settings.

The server answers on its own route (`api.kuberender`), signed as the other commands' calls are, so
this works against any server, a runc one included. What it prints is for review or a GitOps
repository: every Secret's data is "<redacted>", never the credentials.
"""

from __future__ import annotations

from urllib.parse import quote

import click

from forklift.cli.apiclient import endpoint_option, server_url
from forklift.cli.groups import Group

ROUTE = "/_forklift/kubernetes"


@click.group(cls=Group)
def k8s() -> None:
    """Kubernetes: the objects forklift applies for a training job or an endpoint, as YAML."""


@k8s.command("render")
@click.option("--training-job", metavar="NAME", help="The training job whose Job (and Secret, NetworkPolicy) to show.")
@click.option("--endpoint", metavar="NAME", help="The endpoint whose Deployments and Services to show.")
@endpoint_option
def render(training_job: str | None, endpoint: str | None, endpoint_url: str | None) -> None:
    """Print the objects for one resource as multi-document YAML (Secrets' data redacted).

    Name exactly one of --training-job and --endpoint. The objects are those the server applies for it
    with its own [kubernetes] settings; a job that has not resolved its image yet is resolved now.
    """
    if (training_job is None) == (endpoint is None):
        raise click.UsageError("name exactly one of --training-job NAME and --endpoint NAME")
    from forklift.jsonclient import get_text  # here: `forklift k8s --help` starts without it

    path = (f"{ROUTE}/training-jobs/{quote(training_job, safe='')}" if training_job is not None
            else f"{ROUTE}/endpoints/{quote(endpoint or '', safe='')}")
    click.echo(get_text(server_url(endpoint_url), path), nl=False)

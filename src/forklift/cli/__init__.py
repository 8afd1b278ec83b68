"""The `forklift` command.

Subcommands are imported only when they run, so `forklift images pull` does not pay for boto3,
uvicorn or SQLAlchemy it never uses.
"""

from __future__ import annotations

import logging
import sys
from importlib import import_module

import click

from forklift import __version__
from forklift.cli.errors import ReportingGroup

# command name -> ("module:attribute", the one-line help `forklift --help` shows). The help is written
# here so that listing the commands imports none of them; a test holds it equal to each command's own.
COMMANDS = {
    "images": ("forklift.cli.images:images", "Pull, build, push and inspect images in forklift's local store."),
    "login": ("forklift.cli.login:login",
              "Save credentials for REGISTRY (default docker.io) in docker's config.json or its credential store."),
    "logout": ("forklift.cli.login:logout", "Remove the saved credentials for REGISTRY (default docker.io)."),
    "functions": ("forklift.cli.functions:functions",
                  "Register and run credentials-provider functions (RepositoryCredentialsProviderArn)."),
    "roles": ("forklift.cli.roles:roles", "Define execution roles (IAM-style policies)."),
    "keys": ("forklift.cli.keys:keys", "Access keys for signed (SigV4) requests."),
    "audit": ("forklift.cli.audit:audit", "Who changed what and when: the audit log of this FORKLIFT_HOME."),
    "run": ("forklift.cli.run:run",
            "Run IMAGE (pulled if needed) with ARGS, stream its logs, and exit with its exit code."),
    "serve": ("forklift.cli.serve:serve",
              "Serve the SageMaker, sagemaker-runtime and CloudWatch Logs APIs for boto3's endpoint_url."),
    "server": ("forklift.cli.server:server", "The forklift server in the background: start, status, stop."),
    "ps": ("forklift.cli.ps:ps",
           "What runs now: the server, training jobs, endpoint instances and `forklift run` containers."),
    "doctor": ("forklift.cli.doctor:doctor",
               "Report what crashed servers and commands left behind; exit 1 when anything is left."),
    "jobs": ("forklift.cli.jobs:jobs", "Training jobs: list, show, logs, stop."),
    "endpoints": ("forklift.cli.endpoints:endpoints",
                  "Real-time inference endpoints: list, show, invoke, logs, delete."),
    "models": ("forklift.cli.models:models", "Models (an image, its model data and environment): list, show, delete."),
    "experiments": ("forklift.cli.experiments:experiments",
                    "Gradient-style experiments: each run is a SageMaker training job on the forklift server."),
    "buckets": ("forklift.cli.buckets:buckets",
                "Copy, list and remove objects in s3:// buckets (an S3 endpoint, or forklift's embedded store)."),
    "catalog": ("forklift.cli.catalog:catalog",
                "Images of SageMaker's built-in algorithms and frameworks (no network needed)."),
    "instance-types": ("forklift.cli.instance_types:instance_types",
                       "Instance types with their vCPUs, memory and GPUs, and what a container gets on this machine."),
    "k8s": ("forklift.cli.k8s:k8s",
            "Kubernetes: the objects forklift applies for a training job or an endpoint, as YAML."),
    "config": ("forklift.cli.config:config", "$FORKLIFT_HOME/config.toml: check it, list the keys it takes."),
    "db": ("forklift.cli.db:db", "The database's schema: upgrade it, show its revision and the migrations."),
    "registry": ("forklift.cli.registry:registry",
                 "A private registry on this machine (CNCF distribution with TLS and auth) to try forklift on."),
    "samples": ("forklift.cli.samples:samples", "The sample training/inference image and its training data."),
    "demo": ("forklift.cli.demo:demo", "Run the end-to-end demo on the embedded defaults (fails loudly on any step)."),
}


class LazyGroup(ReportingGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return super().get_command(ctx, name)
        module, _, attribute = target[0].partition(":")
        return getattr(import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forklift")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Run ML training jobs and inference endpoints from container images in any registry."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

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

# command name -> "module:attribute"
COMMANDS = {
    "images": "forklift.cli.images:images",
    "login": "forklift.cli.login:login",
    "logout": "forklift.cli.login:logout",
    "functions": "forklift.cli.functions:functions",
    "roles": "forklift.cli.roles:roles",
    "run": "forklift.cli.run:run",
    "serve": "forklift.cli.serve:serve",
    "jobs": "forklift.cli.jobs:jobs",
    "endpoints": "forklift.cli.endpoints:endpoints",
    "models": "forklift.cli.models:models",
    "experiments": "forklift.cli.experiments:experiments",
    "buckets": "forklift.cli.buckets:buckets",
    "catalog": "forklift.cli.catalog:catalog",
    "demo": "forklift.cli.demo:demo",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return super().get_command(ctx, name)
        module, _, attribute = target.partition(":")
        return getattr(import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forklift")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Run ML training jobs and inference endpoints from container images in any registry."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

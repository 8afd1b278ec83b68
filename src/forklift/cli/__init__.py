"""The `forklift` command."""

from __future__ import annotations

import logging
import sys

import click

from forklift import __version__
from forklift.cli.buckets import buckets
from forklift.cli.catalog import catalog
from forklift.cli.demo import demo
from forklift.cli.functions import functions
from forklift.cli.images import images
from forklift.cli.jobs import jobs
from forklift.cli.serve import serve
from forklift.cli.login import login, logout
from forklift.cli.roles import roles
from forklift.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forklift")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Run ML training jobs and inference endpoints from container images in any registry."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


main.add_command(images)
main.add_command(login)
main.add_command(logout)
main.add_command(functions)
main.add_command(roles)
main.add_command(demo)
main.add_command(serve)
main.add_command(run)
main.add_command(catalog)
main.add_command(buckets)
main.add_command(jobs)

"""The `forklift` command."""

from __future__ import annotations

import logging
import sys

import click

from forklift import __version__
from forklift.cli.demo import demo
from forklift.cli.images import images


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forklift")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Run ML training jobs and inference endpoints from container images in any registry."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


main.add_command(images)
main.add_command(demo)

try:  # the catalog ships with its data file; optional while it is being generated
    from forklift.cli.catalog import catalog
except ImportError:  # pragma: no cover
    catalog = None
if catalog is not None:
    main.add_command(catalog)

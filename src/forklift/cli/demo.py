"""`forklift demo`: the main job."""

from __future__ import annotations

import click

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo's working directory for inspection.")
def demo(keep: bool) -> None:
    """Run the end-to-end demo on the embedded defaults (fails loudly on any step)."""
    from forklift.demo.main import run_demo

    run_demo(say=lambda text: click.echo(text), keep=keep)

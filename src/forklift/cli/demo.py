"""`forklift demo`: the main job."""

from __future__ import annotations

import click


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo's working directory for inspection.")
def demo(keep: bool) -> None:
    """Run the end-to-end demo on the embedded defaults (fails loudly on any step)."""
    from forklift.demo import run_demo

    run_demo(say=lambda text: click.echo(text), keep=keep)

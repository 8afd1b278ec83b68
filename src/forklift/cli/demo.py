"""`forklift demo`: the main job."""

from __future__ import annotations

import click


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo's working directory for inspection.")
def demo(keep: bool) -> None:
    """Run the end-to-end demo on the embedded defaults (fails loudly on any step)."""
    from forklift.demo import DemoFailed, run_demo

    try:
        run_demo(say=lambda text: click.echo(text), keep=keep)
    except DemoFailed as exc:
        raise click.ClickException(str(exc)) from None

"""`forklift samples push|data`: the demo's sample image and training data, for trying the guides.

The image is a small Python image (this machine's Python 3.11, no network needed) whose program
trains a nearest-centroid classifier (`train`) and serves it on port 8080 (`serve`), as SageMaker's
container contract says; the data is a CSV of two labelled clusters.
"""

from __future__ import annotations

import click

from forklift.cli.groups import Group

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.

TRAINING_REPOSITORY = "my-training-image:1.0"
INFERENCE_REPOSITORY = "my-inference-image:latest"


@click.group(cls=Group)
def samples() -> None:
    """The sample training/inference image and its training data."""


@samples.command("push")
@click.argument("namespace")
def push_command(namespace: str) -> None:
    """Build the sample image and push it as NAMESPACE/my-training-image:1.0 and
    NAMESPACE/my-inference-image:latest (e.g. NAMESPACE = localhost:5443/docker-local), with the
    credentials `forklift login` (or `forklift registry start`) saved."""
    import asyncio
    import tempfile
    from pathlib import Path

    from forklift.cli.progress import transfer_progress
    from forklift.config import load_settings
    from forklift.credentials.chain import default_keychain
    from forklift.demo.samples import build_sample_image
    from forklift.images.imagestore import ImageStore
    from forklift.images.push import push, source_from_store
    from forklift.reference import parse

    namespace = namespace.rstrip("/")
    training, inference = f"{namespace}/{TRAINING_REPOSITORY}", f"{namespace}/{INFERENCE_REPOSITORY}"
    settings = load_settings()
    store = ImageStore(settings)
    keychain = default_keychain(settings)
    with tempfile.TemporaryDirectory(prefix="forklift-sample-") as work:
        image = build_sample_image(store, Path(work), parse(training).familiar())
    for target in (training, inference):
        with transfer_progress() as progress:
            result = asyncio.run(push(source_from_store(store, image.reference), target, store, keychain=keychain,
                                      progress=progress))
        click.echo(f"{target} {result.digest}")


@samples.command("data")
@click.option("--rows", default=200, show_default=True, type=click.IntRange(2, 1_000_000))
def data_command(rows: int) -> None:
    """Print the sample training data (CSV: label, x, y) on standard output."""
    from forklift.demo.samples import training_csv

    click.echo(training_csv(rows), nl=False)

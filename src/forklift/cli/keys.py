"""`forklift keys …`: the access keys AWS clients sign their requests to `forklift serve` with."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from forklift.audit import AuditLog, local_principal
from forklift.cli.groups import Group
from forklift.cli.output import emit_json, output_option, print_table
from forklift.config import load_settings

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.

if TYPE_CHECKING:
    from forklift.credentials.accesskeys import AccessKeys


def _keys() -> AccessKeys:
    from forklift.credentials.accesskeys import AccessKeys  # SQLAlchemy and cryptography load only here

    return AccessKeys(load_settings())


def _audit() -> AuditLog:
    return AuditLog(load_settings().home)


@click.group(cls=Group)
def keys() -> None:
    """Access keys for signed (SigV4) requests. Once one exists, forklift serve answers signed requests only."""


@keys.command("create")
@click.option("--name", help="A name to find the key by (unique).")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="IAM-style policy JSON limiting the key (Allow/Deny statements; actions such as sagemaker:*, "
                   "logs:*, iam:PassRole; resource ARNs with * and ? wildcards). Without it: full access.")
def create_command(name: str | None, policy_file: Path | None) -> None:
    """Create a key; print AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… (shown only now)."""
    try:
        policy = policy_file.read_text() if policy_file is not None else None
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {policy_file}: {exc}", param_hint="--policy") from None
    from forklift.credentials.errors import InvalidPolicy

    with _audit().action(local_principal(), "CreateAccessKey", name) as note:  # the id only, never the secret
        try:
            key = _keys().create(name, policy)
        except InvalidPolicy as exc:
            raise click.BadParameter(f"{policy_file}: {exc}", param_hint="--policy") from None
        note.update(resource=key.access_key_id, name=key.name)
    click.echo(f"AWS_ACCESS_KEY_ID={key.access_key_id}")
    click.echo(f"AWS_SECRET_ACCESS_KEY={key.secret_access_key}")


@keys.command("list")
@output_option
def list_command(output: str) -> None:
    """List the keys (never their secrets)."""
    found = _keys().list()
    if output == "json":
        emit_json({"AccessKeys": [key.to_json() for key in found]})
        return
    print_table(["ACCESS KEY ID", "NAME", "POLICY", "CREATED"],
                [[key.access_key_id, key.name or "-", "yes" if key.policy is not None else "full access",
                  _when(key.created_at)] for key in found])


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M")


@keys.command("delete")
@click.argument("key")
def delete_command(key: str) -> None:
    """Delete KEY (its id or name); requests signed with it are refused from now on."""
    with _audit().action(local_principal(), "DeleteAccessKey", key) as note:
        deleted = _keys().delete(key)
        note.update(resource=deleted.access_key_id, name=deleted.name)
    click.echo(f"Deleted {deleted.access_key_id}")

"""`forklift roles …`: execution roles whose policies decide which provider functions a job may invoke."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from forklift.audit import AuditLog, local_principal
from forklift.cli.groups import Group
from forklift.cli.output import emit_json, output_option
from forklift.config import load_settings

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.

if TYPE_CHECKING:
    from forklift.credentials.roles import RoleStore


def _store() -> RoleStore:
    from forklift.credentials.roles import RoleStore  # SQLAlchemy loads only when a command runs

    return RoleStore(load_settings())


@click.group(cls=Group)
def roles() -> None:
    """Define execution roles (IAM-style policies). With none defined, any role may invoke any function."""


@roles.command("put")
@click.argument("name")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="IAM-style policy JSON (Allow/Deny statements, Action, Resource with * wildcards).")
@click.option("--managed-policy", "managed", multiple=True,
              help="Attach a managed policy by name or ARN, e.g. AmazonSageMakerFullAccess (repeatable).")
def put_command(name: str, policy_file: Path | None, managed: tuple[str, ...]) -> None:
    """Create or replace role NAME and print its ARN."""
    if policy_file is None and not managed:
        raise click.UsageError("give --policy FILE.json and/or --managed-policy NAME")
    try:
        policy = policy_file.read_text() if policy_file is not None else None
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {policy_file}: {exc}", param_hint="--policy") from None
    with AuditLog(load_settings().home).action(local_principal(), "PutRole", name) as note:
        arn = _store().put(name, policy, managed).arn
        note["resource"] = arn
    click.echo(arn)


@roles.command("list")
@output_option
def list_command(output: str) -> None:
    """List defined roles (`-o json`: each as `roles show` describes it)."""
    roles_ = _store().list()
    if output == "json":
        emit_json({"Roles": [role.describe() for role in roles_]})
        return
    for role in roles_:
        managed = f"  (managed: {', '.join(role.managed)})" if role.managed else ""
        click.echo(f"{role.arn}{managed}")


@roles.command("show")
@click.argument("role")
def show_command(role: str) -> None:
    """Show ROLE (name or ARN) with its policies as JSON."""
    click.echo(json.dumps(_store().get(role).describe(), indent=2))


@roles.command("delete")
@click.argument("role")
def delete_command(role: str) -> None:
    """Delete ROLE (name or ARN)."""
    with AuditLog(load_settings().home).action(local_principal(), "DeleteRole", role) as note:
        arn = _store().delete(role).arn
        note["resource"] = arn
    click.echo(f"Deleted {arn}")


@roles.command("check")
@click.argument("role")
@click.argument("function")
def check_command(role: str, function: str) -> None:
    """Say whether ROLE may invoke FUNCTION (name or ARN); exit status 1 when it may not."""
    from forklift.credentials.functions import FunctionRegistry

    store = _store()
    arn = FunctionRegistry(store.settings).get(function).arn
    store.check_invoke(role, arn)
    click.echo(f"allowed: {role} may invoke {arn}")

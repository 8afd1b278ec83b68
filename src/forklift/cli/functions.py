"""`forklift functions …`: credentials-provider functions addressed by Lambda-style ARNs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from forklift.cli.groups import Group
from forklift.cli.output import emit_json, output_option, print_table
from forklift.config import load_settings
from forklift.credentials.errors import FunctionFailed
from forklift.reference import parse

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.

if TYPE_CHECKING:
    from forklift.credentials.functions import FunctionRegistry

DEFAULT_TIMEOUT = 10.0  # forklift.credentials.functions.DEFAULT_TIMEOUT; that module loads SQLAlchemy
REDACTED = "********"
_SECRET_KEYS = ("password", "secret", "token")


def _registry() -> FunctionRegistry:
    from forklift.credentials.functions import FunctionRegistry

    return FunctionRegistry(load_settings())


def redact(value: object, secrets: set[str]) -> object:
    """A copy with password/secret/token fields and every known secret value replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if any(s in str(k).lower() for s in _SECRET_KEYS) and isinstance(v, str)
                else redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str) and value in secrets:
        return REDACTED
    return value


def scrub(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _secret_values(value: object) -> set[str]:
    """Every string held under a password/secret/token key, at any depth."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str) and any(s in str(k).lower() for s in _SECRET_KEYS):
                found.add(v)
            else:
                found |= _secret_values(v)
    elif isinstance(value, list):
        for v in value:
            found |= _secret_values(v)
    return {s for s in found if s}


@click.group(cls=Group)
def functions() -> None:
    """Register and run credentials-provider functions (RepositoryCredentialsProviderArn)."""


@functions.command("register")
@click.argument("name")
@click.option("--handler", "handler", metavar="FILE.py[:FUNC]",
              help="Python file whose FUNC(event, context) (default `handler`) returns the credentials.")
@click.option("--exec", "command", metavar="COMMAND",
              help="Program that reads the event JSON on stdin and prints the response JSON.")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True, help="Seconds per invocation.")
@click.option("--replace", is_flag=True, help="Replace a function already registered under NAME.")
def register_command(name: str, handler: str | None, command: str | None, timeout: float, replace: bool) -> None:
    """Register NAME and print its ARN."""
    if (handler is None) == (command is None):
        raise click.UsageError("give exactly one of --handler FILE.py[:FUNC] and --exec COMMAND")
    info = _registry().register(name, handler=handler, command=command, timeout=timeout, replace=replace)
    click.echo(info.arn)


@functions.command("list")
@output_option
def list_command(output: str) -> None:
    """List registered functions (`-o json`: Lambda's ListFunctions shape)."""
    from forklift import quickread
    from forklift.credentials.arns import function_arn
    from forklift.credentials.functioninfo import COLUMNS, FunctionInfo

    settings = load_settings()
    found = quickread.select(settings, "credential_functions", COLUMNS, order_by="name")
    if found is None:
        infos = _registry().list()
    else:
        infos = [FunctionInfo(row["name"], function_arn(row["name"], settings.region, settings.account),
                              *(row[c] for c in COLUMNS[1:])) for row in found]
    rows = [f.describe() for f in infos]
    if output == "json":
        emit_json({"Functions": rows})
        return
    print_table(("NAME", "RUNTIME", "HANDLER", "TIMEOUT", "ARN"),
                [(r["FunctionName"], r["Runtime"], r["Handler"], f"{r['Timeout']:g}s", r["FunctionArn"]) for r in rows])


@functions.command("show")
@click.argument("function")
def show_command(function: str) -> None:
    """Show FUNCTION (name or ARN) as JSON; the code itself stays encrypted."""
    click.echo(json.dumps(_registry().get(function).describe(), indent=2))


@functions.command("invoke")
@click.argument("function")
@click.option("--image", help="Image reference the credentials are for (fills registry and repository).")
@click.option("--event", "event_json", help="The whole event as JSON instead of --image.")
@click.option("--log", "show_log", is_flag=True, help="Also print what the function wrote to stderr.")
def invoke_command(function: str, image: str | None, event_json: str | None, show_log: bool) -> None:
    """Invoke FUNCTION once and print its response, secrets redacted; a wrong shape is an error instead."""
    if (image is None) == (event_json is None):
        raise click.UsageError("give exactly one of --image REF and --event JSON")
    if image is not None:
        ref = parse(image)
        event = {"registry": ref.registry, "repository": ref.repository, "image": str(ref)}
    else:
        try:
            event = json.loads(event_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--event") from None
    from forklift.credentials.invoke import credentials_from_response

    registry = _registry()
    info = registry.get(function)
    try:
        result = registry.invoke(info.arn, event)
    except FunctionFailed as exc:
        if show_log and exc.log:
            click.echo(exc.log, err=True, nl=not exc.log.endswith("\n"))
        raise
    secrets = _secret_values(result.response)
    try:
        # A malformed answer is described, never printed: it may hold the password anywhere.
        credentials = credentials_from_response(info.arn, result.response)
        secrets.add(credentials.password or "")
    finally:
        if show_log and result.log:
            click.echo(scrub(result.log, secrets - {""}), err=True, nl=not result.log.endswith("\n"))
    click.echo(json.dumps(redact(result.response, secrets - {""}), indent=2))


@functions.command("logs")
@click.argument("function")
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help="Only the last N lines.")
def logs_command(function: str, tail: int | None) -> None:
    """What FUNCTION said when it failed (its exception, traceback and stderr), kept on this machine only."""
    from forklift.credentials.arns import check_function_name, parse_function_arn
    from forklift.credentials.functionlogs import function_log_path, read_log

    name = parse_function_arn(function).name if function.startswith("arn:") else check_function_name(function)
    path = function_log_path(load_settings().home, name)
    text = read_log(path, tail)
    if not text and not path.exists():
        click.echo(f"function {name} has logged nothing yet ({path})", err=True)
        return
    click.echo(text, nl=False)


@functions.command("delete")
@click.argument("function")
def delete_command(function: str) -> None:
    """Delete FUNCTION (name or ARN) and its stored code."""
    click.echo(f"Deleted {_registry().delete(function).arn}")

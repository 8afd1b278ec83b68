"""`forklift config check|keys`: is `$FORKLIFT_HOME/config.toml` right, and what can it hold."""

from __future__ import annotations

import click

from forklift.cli.groups import Group
from forklift.cli.output import emit_json, output_option, print_table

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.


@click.group(cls=Group)
def config() -> None:
    """$FORKLIFT_HOME/config.toml: check it, list the keys it takes."""


def _flat(schema: dict, prefix: str = ""):
    for name, spec in schema.items():
        if isinstance(spec, dict):
            yield from _flat(spec, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", spec


def _set_keys(data: dict, schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, value in data.items():
        # A key whose value is itself a table ([kubernetes.node_selector]) is one key, not a section.
        section = isinstance(value, dict) and isinstance(schema.get(name), dict)
        keys += _set_keys(value, schema[name], f"{prefix}{name}.") if section else [f"{prefix}{name}"]
    return keys


@config.command("check")
def check_command() -> None:
    """Read config.toml as the server would; exit 1 naming each problem and its fix."""
    from forklift.config import SCHEMA, forklift_home, load_settings, read_config_file
    from forklift.control.inference.settings import inference_settings
    from forklift.control.settings import control_settings
    from forklift.kube.settings import kube_settings
    from forklift.storage.settings import s3_endpoint

    home = forklift_home()
    path, data = read_config_file(home)
    settings = load_settings(home)
    # each package converts its own keys
    for read in (control_settings, inference_settings, kube_settings, s3_endpoint):
        read(settings)
    if not path.exists():
        click.echo(f"{path} does not exist: every setting has its default")
        return
    restart = {key for key, spec in _flat(SCHEMA) if spec.restart}
    keys = _set_keys(data, SCHEMA)
    click.echo(f"{path}: OK ({len(keys)} key{'s' if len(keys) != 1 else ''} set)")
    for key in keys:
        click.echo(f"  {key}{'' if key in restart else '  (read at each use: no restart needed)'}")
    if restart & set(keys):
        click.echo("a running `forklift serve` reads config.toml at start: restart it after a change "
                   "(`forklift server stop && forklift server start`)")


@config.command("keys")
@output_option
def keys_command(output: str) -> None:
    """Every key config.toml takes, what it holds, and whether the server must be restarted."""
    from forklift.config import SCHEMA

    keys = [{"Key": key, "Holds": spec.kind, "RestartServer": spec.restart} for key, spec in _flat(SCHEMA)]
    if output == "json":
        emit_json({"Keys": keys})
        return
    print_table(("KEY", "HOLDS", "AFTER A CHANGE"),
                [(k["Key"], k["Holds"], "restart the server" if k["RestartServer"] else "used at once")
                 for k in keys])

"""Command groups where `ls` and `list` (and `rm` and `delete`) name the same command, and failures end
as `forklift.cli.errors` says."""

from __future__ import annotations

import click

from forklift.cli.errors import ReportingGroup

ALIASES = {"ls": "list", "list": "ls", "rm": "delete", "delete": "rm"}


class Group(ReportingGroup):
    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in ALIASES:
            command = super().get_command(ctx, ALIASES[name])
        return command

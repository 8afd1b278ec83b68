"""How commands print: tables for people, JSON for scripts.

`-o json` prints the API's own shapes (a Describe response without its ResponseMetadata, a List
response's items), with datetimes as ISO 8601. Tables are rich tables on a terminal; anywhere else
they are plain columns that are never cut, so `grep`, `awk` and `cut` see whole values.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import click

# rich is imported inside the functions that draw for a terminal: output to a pipe starts without it.

# A cell is its text, or (text, rich style) to colour it on a terminal.
Cell = str | tuple[str, str]

output_option = click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
                             show_default=True, help="table for people; json (the API's own shapes) for scripts.")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.decode(errors="replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_jsonable))


def api_shape(response: dict) -> dict:
    """A boto3 response as the API's own shape (no ResponseMetadata)."""
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def _text(cell: Cell) -> str:
    return cell[0] if isinstance(cell, tuple) else cell


def _on_terminal() -> bool:
    return sys.stdout.isatty()


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    rows = [list(r) for r in rows]
    if not _on_terminal():
        _plain_columns([list(headers)] + [[_text(c) for c in r] for r in rows])
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(*headers, box=None)
    for row in rows:
        table.add_row(*(Text(c[0], style=c[1]) if isinstance(c, tuple) else Text(c) for c in row))
    Console().print(table)


def print_fields(fields: Iterable[tuple[str, Cell]]) -> None:
    """One `Key  value` line per field (a Describe for people)."""
    fields = list(fields)
    if not _on_terminal():
        _plain_columns([[key, _text(value)] for key, value in fields])
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=False)
    for key, value in fields:
        table.add_row(Text(key, style="bold"),
                      Text(value[0], style=value[1]) if isinstance(value, tuple) else Text(value))
    Console().print(table)


def _plain_columns(lines: list[list[str]]) -> None:
    if not lines:
        return
    widths = [max(len(line[i]) for line in lines if i < len(line)) for i in range(max(map(len, lines)))]
    for line in lines:
        cells = [cell.ljust(widths[i]) if i < len(line) - 1 else cell for i, cell in enumerate(line)]
        click.echo("  ".join(cells).rstrip())

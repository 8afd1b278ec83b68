"""`forklift audit [--since WHEN] [--principal WHO] [--json]`: the audit log, read on the server's machine.

It reads `$FORKLIFT_HOME/audit/*.jsonl` directly (`forklift.audit`), not through the API, so it shows
what was recorded even when the server is down. A line that is not a record is reported on stderr
and skipped.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from forklift import audit as auditlog
from forklift.cli.output import print_table
from forklift.config import load_settings

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> datetime:
    """`30m`, `1h`, `2d` (that long ago), or an ISO 8601 date or time; one without a zone is local time."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        amount, unit = relative.groups()
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration (30m, 1h, 2d, 1w) nor an ISO 8601 date or "
                                 "time (2026-12-03, 2026-12-03T10:00, 2026-12-03T10:00:00Z)",
                                 param_hint="--since") from None
    return moment if moment.tzinfo else moment.astimezone()


def matches(record: dict[str, Any], who: str) -> bool:
    """Whether `who` (a principal as recorded, a key's name or an access key id) made the record."""
    principal = record.get("principal") or ""
    return who in (principal, record.get("access_key_id")) or principal.endswith(f":user/{who}")


def _detail(record: dict[str, Any]) -> str:
    if record.get("event") == "pull":
        image = f"{record.get('registry') or '?'}/{record.get('repository') or '?'}"
        return f"{image}@{record['digest']}" if record.get("digest") else image
    if record.get("event") == "orphan":  # found at a server's start (forklift.control.kubernetes.orphans)
        return f"{record.get('reason') or '?'}; remove it with: {record.get('remove') or '?'}"
    parts = [f"from {record['source']}" if record.get("source") else "",
             f"key {record['access_key_id']}" if record.get("access_key_id") else "",
             f"request {record['request_id']}" if record.get("request_id") else ""]
    return ", ".join(p for p in parts if p)


@click.command()
@click.option("--since", help="Only records from then on: 30m, 1h, 2d, 1w ago, or an ISO 8601 date or time "
                              "(local time unless it names a zone, e.g. 2026-12-03T10:00:00Z).")
@click.option("--principal", help="Only records of this principal: its ARN, a key name or access key id, "
                                  "or local:<user>.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one record each, as stored.")
def audit(since: str | None, principal: str | None, as_json: bool) -> None:
    """Who changed what and when: the audit log of this FORKLIFT_HOME."""
    start = parse_since(since) if since else None
    home = load_settings().home
    kept: list[dict[str, Any]] = []
    for entry in auditlog.read(home, start):
        if isinstance(entry, auditlog.CorruptLine):
            click.echo(f"forklift: skipped line {entry.number} of {entry.path}: not an audit record", err=True)
            continue
        if principal and not matches(entry, principal):
            continue
        if as_json:
            click.echo(json.dumps(entry, separators=(",", ":")))
        else:
            kept.append(entry)
    if not as_json:
        print_table(("TIME", "PRINCIPAL", "OPERATION", "RESOURCE", "OUTCOME", "DETAIL"),
                    [(r["time"], r.get("principal") or "-", r.get("operation") or "-", r.get("resource") or "-",
                      (r.get("outcome") or "-", "green" if r.get("outcome") == auditlog.OK else "red"), _detail(r))
                     for r in kept])

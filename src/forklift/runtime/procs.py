"""Telling a live process apart from a later one that reused its pid."""

from __future__ import annotations

from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # fields from 3 on; the command name may hold spaces


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks after boot)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def alive(pid: int, started: int | None) -> bool:
    """True while `pid` is the same process (same start time) and not a zombie."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z" and (started is None or int(fields[19]) == started)

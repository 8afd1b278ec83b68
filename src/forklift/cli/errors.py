"""How a command ends when something fails: one handler, applied by every group of the CLI.

- a `ForkliftError` (something the user can fix) is one line, `Error: <message>`, exit status 1;
- a refused AWS call (botocore's `ClientError`, or another botocore error such as
  `EndpointConnectionError`) is one line, `Error: <Code>: <Message>`, exit status 1; the CLI's own JSON
  client errors are ForkliftErrors already worded that way;
- click's own exceptions (usage errors, `Exit`, `Abort`) go on to click as they are;
- Ctrl-C ends the command quietly with exit status 130;
- anything else is a bug: `forklift: internal error: <Type>: <message>; the traceback is in <path>`
  on stderr, exit status 70 (EX_SOFTWARE), with the traceback written to
  `$FORKLIFT_HOME/logs/cli-errors/<time>-<pid>.txt` (a temporary file when that cannot be written).

Nothing here imports botocore (whether an error is botocore's is read from its class's module), and
the configuration is read only when a traceback is written.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from typing import Any, NoReturn

import click

from forklift import __version__
from forklift.errors import ForkliftError

EX_SOFTWARE = 70
INTERRUPTED = 130


class ReportingGroup(click.Group):
    """A group whose commands (and subgroups) end as described above when they fail."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Exit(INTERRUPTED) from None
        except Exception as exc:  # noqa: BLE001 - the one place that reports whatever a command raised
            report(exc)


def report(exc: Exception) -> NoReturn:
    """Raise what click prints for `exc`: a ClickException for the user's errors, else an Exit after
    reporting an internal error."""
    log = logging.getLogger("forklift")
    if isinstance(exc, ForkliftError):
        log.debug("command failed", exc_info=exc)
        raise click.ClickException(str(exc)) from None
    message = _botocore_message(exc)
    if message is not None:
        log.debug("command failed", exc_info=exc)
        raise click.ClickException(message) from None
    log.debug("internal error", exc_info=exc)
    path = _write_traceback(exc)
    text = str(exc).strip().splitlines()
    summary = f"{type(exc).__name__}: {text[0]}" + (" …" if len(text) > 1 else "") if text else type(exc).__name__
    where = f"the traceback is in {path}" if path else "the traceback could not be written, so here it is:"
    click.echo(f"forklift: internal error: {summary}; {where}", err=True)
    if path is None:
        click.echo("".join(traceback.format_exception(exc)), err=True, nl=False)
    raise click.exceptions.Exit(EX_SOFTWARE)


def _botocore_message(exc: Exception) -> str | None:
    """A refused or failed AWS call as `Code: Message` (or botocore's own sentence); None for the
    rest. Decided by the exception's module, so botocore is never imported here."""
    if not type(exc).__module__.startswith("botocore"):
        return None
    error = (getattr(exc, "response", None) or {}).get("Error")
    return f"{error.get('Code')}: {error.get('Message')}" if error else str(exc)


def _write_traceback(exc: Exception) -> str | None:
    """The traceback (with the command line and forklift's version) in a file of its own; its path,
    or None when no file could be written."""
    text = (f"forklift {__version__}, Python {sys.version.split()[0]}\n"
            f"command: {' '.join(sys.argv)}\n"
            f"time: {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n\n"
            + "".join(traceback.format_exception(exc)))
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    try:
        from forklift.config import forklift_home  # here: `forklift --help` starts without config's imports

        directory = forklift_home() / "logs" / "cli-errors"
        directory.mkdir(parents=True, exist_ok=True)
        path = str(directory / name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except Exception:  # noqa: BLE001 - an unwritable (or broken) FORKLIFT_HOME: a temporary file instead
        import tempfile  # only on this rare path: it costs every command a few milliseconds

        try:
            fd, path = tempfile.mkstemp(prefix="forklift-cli-error-", suffix=".txt")
        except OSError:
            return None
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
    except OSError:
        return None
    return path

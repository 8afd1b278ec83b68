"""Turn expected failures into one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import logging

import click


def _expected() -> tuple[type[BaseException], ...]:
    """The errors that are the user's to fix. Imported only once something failed: a command that
    succeeds pays nothing for the modules that define them (an error from one of them means it is
    loaded already)."""
    from forklift.config import ConfigError
    from forklift.credentials.errors import CredentialsError
    from forklift.images.layout import LayoutError
    from forklift.images.imagestore import ImageNotFound
    from forklift.images.content import BlobNotFound
    from forklift.reference import InvalidReference
    from forklift.registry.errors import RegistryError

    return (CredentialsError, RegistryError, InvalidReference, ImageNotFound, BlobNotFound, LayoutError, ConfigError,
            ValueError, OSError)


def _api_error_message(exc: Exception) -> str | None:
    """A refused API call (the CLI's JSON client, or botocore in user-facing flows) as one line."""
    from forklift.jsonclient import ApiError

    if isinstance(exc, ApiError):
        return str(exc)
    if not type(exc).__module__.startswith("botocore"):
        return None
    error = (getattr(exc, "response", None) or {}).get("Error")
    return f"{error.get('Code')}: {error.get('Message')}" if error else str(exc)


def handle_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as exc:
            if isinstance(exc, _expected()):
                logging.getLogger("forklift").debug("command failed", exc_info=True)
                raise click.ClickException(str(exc)) from None
            message = _api_error_message(exc)
            if message is None:
                raise
            raise click.ClickException(message) from None
    return wrapper

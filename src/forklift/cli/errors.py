"""Turn expected failures into one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import logging

import click

from forklift.config import ConfigError
from forklift.credentials.errors import CredentialsError
from forklift.images.layout import LayoutError
from forklift.images.local import ImageNotFound
from forklift.images.store import BlobNotFound
from forklift.reference import InvalidReference
from forklift.registry.errors import RegistryError

EXPECTED = (CredentialsError, RegistryError, InvalidReference, ImageNotFound, BlobNotFound, LayoutError, ConfigError, ValueError, OSError)


def handle_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except EXPECTED as exc:
            logging.getLogger("forklift").debug("command failed", exc_info=True)
            raise click.ClickException(str(exc)) from None
    return wrapper

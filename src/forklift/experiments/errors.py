"""The base of the experiments' errors."""

from __future__ import annotations

from forklift.errors import ForkliftError


class ExperimentError(ForkliftError):
    """An experiment operation that cannot be done as asked; the message says why."""


class InvalidExperiment(ExperimentError, ValueError):
    """Options that make no training job (a bad name, KEY=VALUE, input URI, --workspace); the message
    names the option."""

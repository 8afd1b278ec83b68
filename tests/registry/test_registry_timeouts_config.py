"""The registry's waits in config.toml: defaults, values read, a bad value named with its fix, and the
blob deadline they give."""

from __future__ import annotations

import pytest

from forklift.config import ConfigError, load_settings
from forklift.registry.retry import RetryPolicy
from forklift.registry.timeouts import MIN_BLOB_RATE, Timeouts


def test_defaults_are_the_documented_ones(tmp_path):
    settings = load_settings(tmp_path)
    assert Timeouts.from_settings(settings) == Timeouts(connect=10, first_byte=30, read=30)
    assert settings.registry_retry_seconds == 60


def test_values_are_read(tmp_path):
    (tmp_path / "config.toml").write_text(
        "registry_connect_timeout_seconds = 2\nregistry_first_byte_timeout_seconds = 3.5\n"
        "registry_read_timeout_seconds = 4\nregistry_retry_seconds = 0\n")
    settings = load_settings(tmp_path)
    assert Timeouts.from_settings(settings) == Timeouts(connect=2, first_byte=3.5, read=4)
    assert settings.registry_retry_seconds == 0
    assert not RetryPolicy(budget=settings.registry_retry_seconds).attempts().retries_status(503)  # no waiting at all


@pytest.mark.parametrize("written", ["0", "-1", '"10s"', "nan"])
def test_a_bad_timeout_is_named_with_its_fix(tmp_path, written):
    (tmp_path / "config.toml").write_text(f"registry_read_timeout_seconds = {written}\n")
    with pytest.raises(ConfigError, match=r"registry_read_timeout_seconds = .*: must be"):
        load_settings(tmp_path)


def test_the_blob_deadline_covers_every_wait_and_a_slow_rate():
    timeouts = Timeouts(connect=10, first_byte=30, read=30)
    assert timeouts.blob_deadline(0, 60) == 130
    one_gib = 1 << 30
    assert timeouts.blob_deadline(one_gib, 60) == 130 + one_gib / MIN_BLOB_RATE  # about 4.5 hours

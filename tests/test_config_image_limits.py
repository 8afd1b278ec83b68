"""max_image_bytes and max_image_files in config.toml: sizes written as people write them, bad ones named."""

from __future__ import annotations

import pytest

from forklift.config import DEFAULT_MAX_IMAGE_FILES, ConfigError, load_settings


@pytest.mark.parametrize(("written", "size"), [
    ('"20 GiB"', 20 << 30), ('"500MB"', 500_000_000), ('"1.5TiB"', 3 << 39), ("1048576", 1 << 20), ('"4096"', 4096),
])
def test_sizes(tmp_path, written, size):
    (tmp_path / "config.toml").write_text(f"max_image_bytes = {written}\nmax_image_files = 5000\n")
    settings = load_settings(tmp_path)
    assert settings.max_image_bytes == size and settings.max_image_files == 5000


def test_defaults(tmp_path):
    settings = load_settings(tmp_path)
    assert settings.max_image_bytes is None and settings.max_image_files == DEFAULT_MAX_IMAGE_FILES


@pytest.mark.parametrize("written", ['"20 parsecs"', "0", "-1", '"GiB"', "true"])
def test_bad_sizes_are_named_with_the_fix(tmp_path, written):
    (tmp_path / "config.toml").write_text(f"max_image_bytes = {written}\n")
    with pytest.raises(ConfigError, match=r'max_image_bytes = .*: must be a size: bytes \(an integer\) or a string '
                                          r'like "20 GiB"'):
        load_settings(tmp_path)


def test_a_typo_gets_a_suggestion(tmp_path):
    (tmp_path / "config.toml").write_text("max_image_file = 10\n")
    with pytest.raises(ConfigError, match="unknown key max_image_file: did you mean max_image_files?"):
        load_settings(tmp_path)


def test_a_file_count_out_of_range(tmp_path):
    (tmp_path / "config.toml").write_text("max_image_files = 0\n")
    with pytest.raises(ConfigError, match=r"max_image_files = 0: must be an integer from 1 to 100000000$"):
        load_settings(tmp_path)

"""Where forklift keeps its state, and the user's settings from `$FORKLIFT_HOME/config.toml`.

config.toml (every key optional):

    region = "us-east-1"
    account = "000000000000"
    insecure_registries = ["localhost:5000"]   # plain HTTP / unverified TLS, by explicit opt-in only
    max_concurrent_downloads = 6
    max_concurrent_uploads = 5
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"


def forklift_home() -> Path:
    """`FORKLIFT_HOME`, default `~/.forklift`; created on first use."""
    home = Path(os.environ.get("FORKLIFT_HOME") or Path.home() / ".forklift").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


@dataclass(frozen=True)
class Settings:
    home: Path
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    insecure_registries: frozenset[str] = field(default_factory=frozenset)
    max_concurrent_downloads: int = 6
    max_concurrent_uploads: int = 5

    @property
    def database_url(self) -> str:
        return os.environ.get("FORKLIFT_DATABASE_URL") or f"sqlite:///{self.home / 'forklift.db'}"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def certs_dirs(self) -> list[Path]:
        """Per-registry CA directories, docker's `certs.d` layout, most specific first."""
        return [self.home / "certs.d", Path("/etc/docker/certs.d")]

    def is_insecure(self, registry: str) -> bool:
        return registry in self.insecure_registries


class ConfigError(ValueError):
    """config.toml cannot be read or holds a wrong value."""


def read_config_file(home: Path) -> tuple[Path, dict]:
    """`$FORKLIFT_HOME/config.toml` parsed (empty when absent). Each package reads its own keys from it."""
    path = home / "config.toml"
    if not path.exists():
        return path, {}
    try:
        return path, tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_settings(home: Path | None = None) -> Settings:
    home = home or forklift_home()
    path, data = read_config_file(home)
    insecure = data.get("insecure_registries", [])
    if not isinstance(insecure, list) or not all(isinstance(h, str) for h in insecure):
        raise ConfigError(f"{path}: insecure_registries must be a list of host[:port] strings")
    return Settings(
        home=home,
        region=str(data.get("region", DEFAULT_REGION)),
        account=str(data.get("account", DEFAULT_ACCOUNT)),
        insecure_registries=frozenset(insecure),
        max_concurrent_downloads=int(data.get("max_concurrent_downloads", 6)),
        max_concurrent_uploads=int(data.get("max_concurrent_uploads", 5)),
    )

"""Where forklift keeps its state, and the user's settings from `$FORKLIFT_HOME/config.toml`.

config.toml (every key optional):

    region = "us-east-1"
    account = "000000000000"
    insecure_registries = ["localhost:5000"]   # plain HTTP / unverified TLS, by explicit opt-in only
    max_concurrent_downloads = 6
    max_concurrent_uploads = 5

    [server]                                   # forklift serve's HTTP edge
    max_connections_per_client = 256           # open connections from one source address
    max_connections = 15000                    # in all (default: RLIMIT_NOFILE less a quarter)
    request_head_timeout_seconds = 10          # first byte of a request to the end of its headers
    request_body_timeout_seconds = 60          # end of the headers to the end of the body
    keep_alive_timeout_seconds = 5             # an idle connection between requests

Each package reads its own keys (control, inference, storage); the shape of the whole file is
checked here, once, whenever it is read: an unknown key or a value of the wrong kind is an error
naming the file, the key and the fix, before anything runs on a misread setting. `SCHEMA` is
that shape, with whether `forklift serve` must be restarted to see a change.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forklift.errors import ForkliftError

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


class ConfigError(ForkliftError, ValueError):
    """config.toml cannot be read or holds a wrong value."""


@dataclass(frozen=True)
class Key:
    """One config.toml key: what it holds, how to check a value (None when fine, else what to
    write instead), and whether a running server sees a change without a restart."""

    kind: str  # shown in messages: "a string", "a list of host[:port] strings", ...
    check: Callable[[Any], str | None]
    restart: bool = True


HOST_PORT = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?")


def _host_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return 'must be a list of host[:port] strings, e.g. ["localhost:5000"]'
    for item in value:
        if "://" in item:
            bare = item.split("://", 1)[1].rstrip("/")
            return f'"{item}" is a URL, and registries are named host[:port]: write "{bare}"'
        if not HOST_PORT.fullmatch(item):
            return f'"{item}" is not host[:port] (e.g. "registry.example.com:5000")'
    return None


def _number(minimum: float, maximum: float, integer: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        # nan and inf are TOML floats too: neither makes a timeout, an interval or a size.
        if isinstance(value, bool) or not ok or not math.isfinite(value) or not minimum <= value <= maximum:
            return f"must be {'an integer' if integer else 'a number'} from {minimum:g} to {maximum:g}"
        return None
    return check


DAY = 86400.0


def _matching(pattern: str, what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and re.fullmatch(pattern, value) else f"must be {what}"
    return check


def _http_url(value: Any) -> str | None:
    if isinstance(value, str) and (value == "" or re.fullmatch(r"https?://[^/\s]+(/\S*)?", value)):
        return None
    return 'must be an http(s):// URL such as "http://127.0.0.1:9000"'


SCHEMA: dict[str, Key | dict[str, Key]] = {
    "region": Key("a region name", _matching(r"[a-z0-9-]{1,32}", 'a region name such as "us-east-1"')),
    "account": Key("a 12-digit account id", _matching(r"\d{12}", 'a 12-digit account id such as "000000000000"')),
    "insecure_registries": Key("a list of host[:port] strings", _host_list),
    "max_concurrent_downloads": Key("an integer from 1 to 64", _number(1, 64, integer=True)),
    "max_concurrent_uploads": Key("an integer from 1 to 64", _number(1, 64, integer=True)),
    "platform_registries": Key("a list of host[:port] strings", _host_list),
    "stop_grace_seconds": Key("a number of seconds", _number(0, DAY)),
    "s3_endpoint_url": Key("an http(s):// URL", _http_url, restart=False),
    "capacity": {"cpus": Key("a number of CPUs", _number(0.01, 100_000)),
                 "memory_gib": Key("a number of GiB", _number(0.01, 1_000_000))},
    "inference": {"startup_health_check_timeout_seconds": Key("a number of seconds", _number(1, DAY)),
                  "health_check_interval_seconds": Key("a number of seconds", _number(0.01, 3600)),
                  "unhealthy_after_failed_pings": Key("an integer from 1 to 1000", _number(1, 1000, integer=True)),
                  "stop_grace_seconds": Key("a number of seconds", _number(0, DAY))},
    # The HTTP edge of `forklift serve` (forklift.api.edge): what one client may hold of it.
    "server": {"max_connections": Key("an integer from 16 to 1000000", _number(16, 1_000_000, integer=True)),
               "max_connections_per_client": Key("an integer from 1 to 1000000", _number(1, 1_000_000, integer=True)),
               "request_head_timeout_seconds": Key("a number of seconds", _number(0.01, 3600)),
               "request_body_timeout_seconds": Key("a number of seconds", _number(0.01, DAY)),
               "keep_alive_timeout_seconds": Key("a number of seconds", _number(0.01, 3600))},
}


def _did_you_mean(name: str, known, prefix: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean {prefix}{close[0]}?"
    return f"known keys: {', '.join(prefix + k for k in sorted(known))}"


def config_problems(data: dict, schema: dict = SCHEMA, prefix: str = "") -> list[str]:
    """Every unknown key and bad value in a parsed config.toml, each with its fix."""
    problems = []
    for name, value in data.items():
        key = f"{prefix}{name}"
        spec = schema.get(name)
        if spec is None:
            problems.append(f"unknown key {key}: {_did_you_mean(name, schema, prefix)}")
        elif isinstance(spec, dict):
            if not isinstance(value, dict):
                problems.append(f"{key} must be a table ([{key}] with keys {', '.join(spec)})")
            else:
                problems += config_problems(value, spec, f"{key}.")
        elif (fix := spec.check(value)) is not None:
            problems.append(f"{key} = {json.dumps(value, default=str)}: {fix}")
    return problems


def read_config_file(home: Path, *, check: bool = True) -> tuple[Path, dict]:
    """`$FORKLIFT_HOME/config.toml` parsed and checked (empty when absent). Each package reads its
    own keys from it. `check=False` is for a key read again at each use by a running server: a typo
    elsewhere in the file, made since the server started, must not break what already runs (the
    reader checks its own key)."""
    path = home / "config.toml"
    if not path.exists():
        return path, {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    problems = config_problems(data) if check else []
    if len(problems) == 1:
        raise ConfigError(f"{path}: {problems[0]}")
    if problems:
        raise ConfigError(f"{path} has {len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems))
    return path, data


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

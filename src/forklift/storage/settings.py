"""Which S3 endpoint `s3://` URIs go to, if any.

The first of these wins:
    AWS_ENDPOINT_URL_S3   (boto3's per-service variable, also what SageMaker local mode sets)
    AWS_ENDPOINT_URL      (boto3's variable for every service)
    s3_endpoint_url = "http://127.0.0.1:9000"   in $FORKLIFT_HOME/config.toml

With none of them set, `s3://bucket/key` lives in the embedded store `$FORKLIFT_HOME/buckets/`.
config.py stays unaware of this key: storage reads it here so one package owns its own setting.

An endpoint that is forklift's own server (the URL in this home's `server.json`, or the one
`FORKLIFT_URL` / `AWS_ENDPOINT_URL_SAGEMAKER` name) is the embedded store served over S3's API: the
store is used directly, so a shell that points every AWS variable at forklift (as the SageMaker SDK
wants) never makes the server its own S3 client.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from forklift.config import ConfigError, Settings, read_config_file
from forklift.serverfile import URL_VARIABLES, read_record

ENV_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
CONFIG_KEY = "s3_endpoint_url"


def s3_endpoint(settings: Settings) -> str | None:
    """The configured S3 endpoint URL, or None for the embedded bucket store."""
    for var in ENV_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            url = _checked(value, var)
            return None if _is_forklift(url, settings) else url
    path, data = read_config_file(settings.home, check=False)  # read at each use: see read_config_file
    value = data.get(CONFIG_KEY)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {CONFIG_KEY} must be a string URL such as \"http://127.0.0.1:9000\"")
    url = _checked(value, f"{path}: {CONFIG_KEY}")
    return None if _is_forklift(url, settings) else url


_LOOPBACK_NAMES = {"localhost": "127.0.0.1", "::1": "127.0.0.1", "0.0.0.0": "127.0.0.1"}  # urlsplit drops [ ]


def _address(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    return parts.scheme, _LOOPBACK_NAMES.get(host, host), port


def _is_forklift(url: str, settings: Settings) -> bool:
    """Whether `url` is this home's forklift server (or the one the SageMaker variables name)."""
    servers = [os.environ.get(var, "").strip() for var in URL_VARIABLES]
    record = read_record(settings.home)
    if record is not None:
        servers.append(record.url)
    mine = _address(url)
    return any(server and _address(server) == mine for server in servers)


def _checked(url: str, origin: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{origin}: {url!r} is not an http(s):// endpoint URL")
    return url

"""Which S3 endpoint `s3://` URIs go to, if any.

The first of these wins:
    AWS_ENDPOINT_URL_S3   (boto3's per-service variable, also what SageMaker local mode sets)
    AWS_ENDPOINT_URL      (boto3's variable for every service)
    s3_endpoint_url = "http://127.0.0.1:9000"   in $FORKLIFT_HOME/config.toml

With none of them set, `s3://bucket/key` lives in the embedded store `$FORKLIFT_HOME/buckets/`.
config.py stays unaware of this key: storage reads it here so one package owns its own setting.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from forklift.config import ConfigError, Settings, read_config_file

ENV_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
CONFIG_KEY = "s3_endpoint_url"


def s3_endpoint(settings: Settings) -> str | None:
    """The configured S3 endpoint URL, or None for the embedded bucket store."""
    for var in ENV_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            return _checked(value, var)
    path, data = read_config_file(settings.home, check=False)  # read at each use: see read_config_file
    value = data.get(CONFIG_KEY)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {CONFIG_KEY} must be a string URL such as \"http://127.0.0.1:9000\"")
    return _checked(value, f"{path}: {CONFIG_KEY}")


def _checked(url: str, origin: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{origin}: {url!r} is not an http(s):// endpoint URL")
    return url

"""Sign the CLI's requests to a forklift server (SigV4), with the credentials AWS tools find.

The standard AWS chain (environment, `AWS_PROFILE` and the shared credentials file, …) as botocore
resolves it. botocore costs about a tenth of a second to load, so it is imported only when there is
something to sign with: `signer()` answers None at once when no credentials are configured, and the
request goes unsigned (what a server without access keys accepts on loopback).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# (method, url, headers, body) -> the headers to send, Authorization and X-Amz-Date included
Signer = Callable[[str, str, Mapping[str, str], bytes], dict[str, str]]


def _configured() -> bool:
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if os.environ.get("AWS_PROFILE"):
        return True
    shared = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or str(Path.home() / ".aws" / "credentials")
    return os.path.isfile(shared)


@functools.cache
def _credentials() -> Any:
    """botocore's frozen credentials, resolved once per process (a command may open several clients)."""
    import botocore.session  # here: botocore loads only for a command that has credentials to sign with

    credentials = botocore.session.Session().get_credentials()
    return credentials.get_frozen_credentials() if credentials is not None else None


def signer(service: str, region: str) -> Signer | None:
    """A signer for `service` ("sagemaker", "logs") in `region`, or None when no credentials are configured."""
    if not _configured():
        return None
    frozen = _credentials()
    if frozen is None:
        return None
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    def sign(method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        SigV4Auth(frozen, service, region).add_auth(request)
        return dict(request.headers.items())

    return sign

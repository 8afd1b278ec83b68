"""Storage fixtures: a FORKLIFT_HOME per test, and a real S3-compatible server for the S3 backend.

AWS S3 itself cannot be reached from here, so its stand-in is moto's server (tests/fixtures/motoserver.py),
started once per session and reset before every test that uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fixtures.motoserver import MotoServer
from forklift.config import Settings, load_settings
from forklift.storage import BucketStore, bucket_store

BUCKET = "data-bucket"


@pytest.fixture
def storage_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FORKLIFT_HOME with no S3 endpoint configured and no user AWS configuration visible."""
    home = tmp_path / "forklift-home"
    home.mkdir()
    monkeypatch.setenv("FORKLIFT_HOME", str(home))
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return home


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto S3 server process on loopback (a stand-in for AWS S3, which cannot run here)."""
    with MotoServer(tmp_path_factory.mktemp("moto") / "server.log") as server:
        yield server.url


@pytest.fixture
def s3_server(moto_server: str, storage_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point s3:// at the moto server, with dummy credentials, and start from an empty S3."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    httpx.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    return moto_server


@dataclass
class Backend:
    kind: str  # "embedded" or "s3"
    settings: Settings
    store: BucketStore
    bucket: str = BUCKET

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, data: bytes, tmp: Path) -> str:
        src = tmp / "put-source"
        src.write_bytes(data)
        self.store.upload(src, self.uri(key))
        return self.uri(key)


@pytest.fixture(params=["embedded", "s3"])
def backend(request: pytest.FixtureRequest, storage_home: Path) -> Backend:
    """The same behaviour, run against the embedded store and against a real S3 server."""
    if request.param == "s3":
        request.getfixturevalue("s3_server")
    settings = load_settings()
    store = bucket_store(settings)
    store.make_bucket(BUCKET)
    return Backend(request.param, settings, store)

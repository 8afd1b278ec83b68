"""Which S3 endpoint `s3://` goes to: the variables and config.toml, and forklift's own server taken for
the embedded store it serves (a shell pointing every AWS variable at forklift, as the SDK wants)."""

from __future__ import annotations

import pytest

from forklift.config import Settings
from forklift.serverfile import write_record
from forklift.storage.settings import s3_endpoint

VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "FORKLIFT_URL", "AWS_ENDPOINT_URL_SAGEMAKER")


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_an_endpoint_elsewhere_is_used_and_none_is_the_embedded_store(home, monkeypatch):
    settings = Settings(home=home)
    assert s3_endpoint(settings) is None
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    assert s3_endpoint(settings) == "http://127.0.0.1:9000"
    write_record(home, "http://127.0.0.1:9400")  # forklift elsewhere on the machine does not change that
    assert s3_endpoint(settings) == "http://127.0.0.1:9000"


@pytest.mark.parametrize("s3_url", ["http://127.0.0.1:9400", "http://localhost:9400/", "http://[::1]:9400"])
def test_this_homes_own_server_is_the_embedded_store(home, monkeypatch, s3_url):
    settings = Settings(home=home)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_url)
    assert s3_endpoint(settings) == s3_url  # no server recorded: an S3 endpoint like any other
    write_record(home, "http://127.0.0.1:9400")
    assert s3_endpoint(settings) is None


def test_the_server_the_sagemaker_variables_name_is_the_embedded_store(home, monkeypatch):
    settings = Settings(home=home)
    (home / "config.toml").write_text('s3_endpoint_url = "https://forklift.internal:8443"\n')
    assert s3_endpoint(settings) == "https://forklift.internal:8443"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", "https://forklift.internal:8443")
    assert s3_endpoint(settings) is None
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", "http://forklift.internal:8443")  # another scheme: another server
    assert s3_endpoint(settings) == "https://forklift.internal:8443"

"""Access keys and signed requests, against a real `forklift serve`, the real boto3 client and the CLI.

Without a key the server keeps its embedded default (unsigned requests accepted, on loopback only);
once `forklift keys create` has made one, every API on the port answers only requests signed by a
known key, with AWS's error codes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fixtures import secretscan
from fixtures.postgres import database_of, stored_bytes

FORKLIFT = [sys.executable, "-m", "forklift"]
REGION = "us-east-1"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)


def forklift(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("AWS_") and k not in ("FORKLIFT_URL", "FORKLIFT_DATABASE_URL")}
    return subprocess.run([*FORKLIFT, *args], capture_output=True, text=True, timeout=60,
                          env={**base, **database_of(home).env(), "FORKLIFT_HOME": str(home), "HOME": str(home),
                               **env})


def created_key(home: Path, *args: str) -> tuple[str, str]:
    result = forklift(home, "keys", "create", *args)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert set(lines) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    secretscan.register("a secret access key `forklift keys create` made", lines["AWS_SECRET_ACCESS_KEY"])
    return lines["AWS_ACCESS_KEY_ID"], lines["AWS_SECRET_ACCESS_KEY"]


def sagemaker(server, key: str, secret: str):
    return boto3.client("sagemaker", endpoint_url=server.url, region_name=REGION, config=NO_RETRY,
                        aws_access_key_id=key, aws_secret_access_key=secret)


def unsigned_list(server) -> httpx.Response:
    return httpx.post(server.url + "/", content=b"{}", headers={
        "X-Amz-Target": "SageMaker.ListTrainingJobs", "Content-Type": "application/x-amz-json-1.1"})


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """The server believes its key cache for 2 s: wait (bounded) for a change to count."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the server did not take the key change into account"
        time.sleep(0.2)


def error_code(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


@pytest.fixture
def keyed(launch) -> Iterator[tuple[object, str, str]]:
    server = launch()
    key, secret = created_key(server.home, "--name", "ci")
    eventually(lambda: unsigned_list(server).status_code == 400)
    yield server, key, secret


def test_without_a_key_unsigned_requests_are_accepted_and_the_server_says_so(launch, stop):
    server = launch()
    assert unsigned_list(server).status_code == 200
    assert "no access key exists, so unsigned requests are accepted" in stop(server)


def test_a_keyed_server_answers_signed_requests_only(keyed):
    server, key, secret = keyed
    assert sagemaker(server, key, secret).list_training_jobs()["TrainingJobSummaries"] == []
    refused = unsigned_list(server)
    assert refused.status_code == 400 and refused.json()["__type"] == "MissingAuthenticationTokenException"
    assert error_code(sagemaker(server, key, secret + "x").list_training_jobs) == "InvalidSignatureException"
    assert error_code(sagemaker(server, "FKIAUNKNOWNKEY000000", secret).list_training_jobs) == \
        "UnrecognizedClientException"
    logs = boto3.client("logs", endpoint_url=server.url, region_name=REGION, config=NO_RETRY,
                        aws_access_key_id=key, aws_secret_access_key=secret + "x")
    assert error_code(logs.describe_log_groups) == "InvalidSignatureException"


def test_invoke_endpoint_is_signed_too(keyed):
    server, key, secret = keyed
    runtime = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name=REGION, config=NO_RETRY,
                           aws_access_key_id=key, aws_secret_access_key=secret)
    # signed by the key: past authentication, the endpoint is simply unknown
    assert error_code(lambda: runtime.invoke_endpoint(EndpointName="nope", Body=b"{}")) == "ValidationError"
    forged = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name=REGION, config=NO_RETRY,
                          aws_access_key_id=key, aws_secret_access_key="wrong")
    assert error_code(lambda: forged.invoke_endpoint(EndpointName="nope", Body=b"{}")) == "InvalidSignatureException"
    unsigned = httpx.post(server.url + "/endpoints/nope/invocations", content=b"{}")
    assert unsigned.status_code == 400 and "MissingAuthenticationToken" in unsigned.headers["x-amzn-errortype"]


def test_the_cli_signs_with_the_aws_credentials_it_finds(keyed):
    server, key, secret = keyed
    signed = forklift(server.home, "jobs", "list", "--endpoint-url", server.url,
                      AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret)
    assert signed.returncode == 0, signed.stderr
    unsigned = forklift(server.home, "jobs", "list", "--endpoint-url", server.url)
    assert unsigned.returncode == 1 and "MissingAuthenticationTokenException" in unsigned.stderr
    assert "internal error" not in unsigned.stderr


def test_keys_list_never_shows_a_secret_and_a_deleted_key_is_refused(keyed):
    server, key, secret = keyed
    listing = forklift(server.home, "keys", "list")
    assert key in listing.stdout and "ci" in listing.stdout and secret not in listing.stdout + listing.stderr
    raw = stored_bytes(server.home)
    assert key.encode() in raw and secret.encode() not in raw  # stored encrypted
    other_key, other_secret = created_key(server.home)
    assert forklift(server.home, "keys", "delete", "ci").returncode == 0
    eventually(lambda: _refused(sagemaker(server, key, secret).list_training_jobs) == "UnrecognizedClientException")
    assert sagemaker(server, other_key, other_secret).list_training_jobs()["TrainingJobSummaries"] == []


def _refused(call: Callable[[], object]) -> str | None:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return None


def test_a_key_created_while_the_server_runs_closes_the_door(launch):
    server = launch()
    assert unsigned_list(server).status_code == 200
    key, secret = created_key(server.home)
    eventually(lambda: unsigned_list(server).status_code == 400)
    assert sagemaker(server, key, secret).list_training_jobs()["TrainingJobSummaries"] == []


def test_listening_beyond_loopback_without_a_key_is_refused(tmp_path):
    home = tmp_path / "home"
    refused = forklift(home, "serve", "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode == 1
    assert "refusing to listen on 0.0.0.0 with no access key" in refused.stderr
    assert "forklift keys create" in refused.stderr and "Traceback" not in refused.stderr


def test_bad_key_options_are_the_users_error(tmp_path):
    home = tmp_path / "home"
    assert "key name" in forklift(home, "keys", "create", "--name", "no spaces").stderr
    created_key(home, "--name", "twice")
    again = forklift(home, "keys", "create", "--name", "twice")
    assert again.returncode == 1 and "exists already" in again.stderr
    gone = forklift(home, "keys", "delete", "FKIANOTAKEY000000000")
    assert gone.returncode == 1 and "no access key" in gone.stderr

"""`forklift serve --tls-cert --tls-key`: HTTPS on the one port, for boto3 (SageMaker and the
InvokeEndpoint fast path) and for the `forklift` commands, which trust a private CA through
AWS_CA_BUNDLE as boto3 does."""

from __future__ import annotations

import http.client
import json
import subprocess
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fixtures.serve import CREDENTIALS, FORKLIFT, REGION, ServeProcess
from forklift.devregistry import Pki

NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, pki: Pki):
    running = ServeProcess(tmp_path_factory.mktemp("tls-home"),
                           serve_args=("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)))
    running.start()
    yield running
    running.stop()


def client(server: ServeProcess, service: str, pki: Pki):
    return boto3.client(service, endpoint_url=server.url, region_name=REGION, config=NO_RETRY,
                        verify=str(pki.ca_cert), **CREDENTIALS)


def test_boto3_calls_over_https(tls_server, pki):
    assert tls_server.url.startswith("https://127.0.0.1:")
    assert json.loads((tls_server.home / "server.json").read_text())["url"] == tls_server.url
    assert client(tls_server, "sagemaker", pki).list_training_jobs()["TrainingJobSummaries"] == []
    with pytest.raises(ClientError) as missing:  # answered by the InvokeEndpoint fast path, over TLS too
        client(tls_server, "sagemaker-runtime", pki).invoke_endpoint(EndpointName="no-such-endpoint", Body=b"{}")
    assert missing.value.response["Error"]["Code"] == "ValidationError"  # sagemaker-runtime's code
    assert "no-such-endpoint" in missing.value.response["Error"]["Message"]


def test_the_cli_trusts_the_server_through_aws_ca_bundle(tls_server, pki):
    trusted = tls_server.forklift("jobs", "list", env=tls_server.env(AWS_CA_BUNDLE=str(pki.ca_cert)))
    assert trusted.returncode == 0, trusted.stderr
    untrusted = tls_server.forklift("jobs", "list")
    assert untrusted.returncode == 1
    assert "TLS certificate is not trusted" in untrusted.stderr and "AWS_CA_BUNDLE" in untrusted.stderr
    assert "Traceback" not in untrusted.stderr
    status = tls_server.forklift("server", "status", env=tls_server.env(AWS_CA_BUNDLE=str(pki.ca_cert)))
    assert status.returncode == 0 and tls_server.url in status.stdout


def test_plain_http_to_the_tls_port_is_refused(tls_server, pki):
    address = urlsplit(tls_server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    with pytest.raises((http.client.HTTPException, OSError)):
        connection.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "SageMaker.ListTrainingJobs"})
        connection.getresponse()
    connection.close()
    assert client(tls_server, "sagemaker", pki).list_models()["Models"] == []  # still serving
    assert "Traceback" not in tls_server.log()


@pytest.mark.parametrize("args, expected", [
    (("--tls-cert", "/no/such/server.crt", "--tls-key", "/no/such/server.key"), "is not a readable file"),
    (("--tls-cert", "{cert}"), "give both the certificate and its private key"),
    (("--tls-cert", "{key}", "--tls-key", "{key}"), "are not a PEM certificate"),
])
def test_unusable_certificates_are_one_clear_line(tmp_path, pki, args, expected):
    args = [a.format(cert=pki.server_cert, key=pki.server_key) for a in args]
    env = ServeProcess(tmp_path).env()
    result = subprocess.run([*FORKLIFT, "serve", "--port", "0", *args], capture_output=True, text=True, env=env,
                            timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "server.json").exists()


def test_config_toml_names_the_certificate_too(tmp_path, pki):
    (tmp_path / "config.toml").write_text(f'tls_cert = "{pki.server_cert}"\n')
    result = subprocess.run([*FORKLIFT, "serve", "--port", "0"], capture_output=True, text=True,
                            env=ServeProcess(tmp_path).env(), timeout=60, check=False)
    assert result.returncode == 1
    assert "tls_cert/tls_key in" in result.stderr and "give both" in result.stderr

"""ECR: username AWS and a token from `ecr:GetAuthorizationToken`, refreshed before it expires.

AWS is not contacted: botocore's Stubber stands in for the ECR API (it checks our request against
botocore's own service model and hands back the canned answers queued below).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from forklift.credentials import ANONYMOUS, Credentials
from forklift.credentials.chain import default_keychain
from forklift.credentials.ecr import EcrKeychain, parse_ecr_host
from forklift.credentials.errors import EcrError
from forklift.images.pull import pull_sync

ECR_ACCOUNT = "123456789012"
ECR_REGION = "us-west-2"
ECR_HOST = f"{ECR_ACCOUNT}.dkr.ecr.{ECR_REGION}.amazonaws.com"


def stubbed_client(region: str = ECR_REGION):
    client = boto3.client("ecr", region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, Stubber(client)


def token_answer(password: str, expires: datetime) -> dict:
    return {"authorizationData": [{
        "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
        "expiresAt": expires,
        "proxyEndpoint": f"https://{ECR_HOST}",
    }]}


def test_ecr_hosts_are_recognized():
    assert parse_ecr_host(ECR_HOST).account == ECR_ACCOUNT
    assert parse_ecr_host(ECR_HOST).region == ECR_REGION
    assert parse_ecr_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").fips
    assert parse_ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn").region == "cn-north-1"
    assert parse_ecr_host("ghcr.io") is None
    assert parse_ecr_host("12345.dkr.ecr.us-east-1.amazonaws.com") is None


def test_token_is_cached_and_refreshed_before_expiry():
    client, stubber = stubbed_client()
    now = [1_700_000_000.0]
    first_expiry = datetime.fromtimestamp(now[0], UTC) + timedelta(hours=12)
    stubber.add_response("get_authorization_token", token_answer("first", first_expiry),
                         {"registryIds": [ECR_ACCOUNT]})
    stubber.add_response("get_authorization_token", token_answer("second", first_expiry + timedelta(hours=12)),
                         {"registryIds": [ECR_ACCOUNT]})
    regions = []

    def factory(region):
        regions.append(region)
        return client

    keychain = EcrKeychain(factory, clock=lambda: now[0])
    with stubber:
        assert keychain.resolve(ECR_HOST, "team/app") == Credentials("AWS", "first")
        now[0] += 11 * 3600  # 12 h token, refreshed 30 min before expiry: still good after 11 h
        assert keychain.resolve(ECR_HOST, "other/app") == Credentials("AWS", "first")
        now[0] += 40 * 60
        assert keychain.resolve(ECR_HOST, "team/app") == Credentials("AWS", "second")
        stubber.assert_no_pending_responses()
    assert regions == [ECR_REGION]
    assert keychain.resolve("ghcr.io", "x") == ANONYMOUS


def test_aws_errors_are_clear():
    client, stubber = stubbed_client()
    stubber.add_client_error("get_authorization_token", "AccessDeniedException",
                             "not authorized to ecr:GetAuthorizationToken")
    with stubber, pytest.raises(EcrError) as info:
        EcrKeychain(lambda region: client).resolve(ECR_HOST, "x")
    assert ECR_HOST in str(info.value) and "AccessDeniedException" in str(info.value)


class EcrNamed:
    """Test-only: the private registry answers on localhost, so ask the wrapped keychain about the ECR
    host name instead. Everything else (token, Basic auth with user AWS) is real."""

    def __init__(self, inner):
        self._inner = inner

    def resolve(self, registry: str, repository: str) -> Credentials:
        return self._inner.resolve(ECR_HOST, repository)


def test_ecr_token_pulls_a_private_image(store, pushed, ecr_facts):
    assert ecr_facts.host == ECR_HOST
    client, stubber = stubbed_client()
    stubber.add_response("get_authorization_token",
                         token_answer(ecr_facts.password, datetime.now(UTC) + timedelta(hours=12)),
                         {"registryIds": [ECR_ACCOUNT]})
    with stubber:
        ecr = EcrKeychain(lambda region: client)
        result = pull_sync(pushed.private, store, keychain=EcrNamed(ecr))
        stubber.assert_no_pending_responses()  # one token for the whole pull
    assert result.image.digest == pushed.digest


def test_default_keychain_asks_ecr_for_ecr_hosts_only(settings):
    client, stubber = stubbed_client()
    stubber.add_response("get_authorization_token",
                         token_answer("tok", datetime.now(UTC) + timedelta(hours=12)),
                         {"registryIds": [ECR_ACCOUNT]})
    with stubber:
        keychain = default_keychain(settings, ecr=EcrKeychain(lambda region: client))
        assert keychain.resolve(ECR_HOST, "team/app") == Credentials("AWS", "tok")
        assert keychain.resolve("registry.example", "team/app") == ANONYMOUS

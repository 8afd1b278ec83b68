"""ListTags' NextToken: a resource holds at most 50 tags and MaxResults is at least 50, so boto3 never sees one;
the handler still pages by a token bound to its resource, checked here on its own SQLite store."""

from __future__ import annotations

import pytest

from forklift.api import tagging
from forklift.api.errors import ApiError
from forklift.api.services import ApiServices
from forklift.api.tokens import encode_token
from forklift.config import Settings
from forklift.control.tags import TagStore

ARN = "arn:aws:sagemaker:us-east-1:000000000000:model/tokens"


@pytest.fixture
def list_tags(tmp_path):
    store = TagStore(Settings(home=tmp_path).database_url, exists=lambda arn: arn.endswith(("/tokens", "/other")))
    services = ApiServices()
    tagging.install(services, store)
    store.add(ARN, [{"Key": f"k{i}", "Value": str(i)} for i in range(5)])
    return services.sagemaker_handlers["ListTags"]


def test_a_token_resumes_after_its_position(list_tags):
    page = list_tags({"ResourceArn": ARN, "NextToken": encode_token((2,), f"ListTags:{ARN}")}, None)
    assert [t["Key"] for t in page["Tags"]] == ["k2", "k3", "k4"] and "NextToken" not in page


@pytest.mark.parametrize("token", [
    encode_token((2,), f"ListTags:{ARN.replace('tokens', 'other')}"),  # another resource's
    encode_token(("k2",), f"ListTags:{ARN}"), encode_token((), f"ListTags:{ARN}"), "garbage"])
def test_a_token_not_made_for_this_resource_is_refused(list_tags, token):
    with pytest.raises(ApiError) as refused:
        list_tags({"ResourceArn": ARN, "NextToken": token}, None)
    assert refused.value.code == "ValidationException" and "NextToken" in refused.value.message

"""TagStore on SQLite and PostgreSQL: pages that resume where the last one ended, in the order keys were
first added, while tags are added and deleted between pages; only resources that exist are tagged (an
ARN holding a NUL never does)."""

from __future__ import annotations

import uuid

import pytest

from forklift.config import Settings
from forklift.control.tags import TagStore, TooManyTags, UnknownResource


@pytest.fixture
def arn() -> str:  # one of its own for each test: a PostgreSQL database outlives the test
    return f"arn:aws:sagemaker:us-east-1:000000000000:model/tagged-{uuid.uuid4().hex[:8]}"


def tags(*keys: str) -> list[dict]:
    return [{"Key": k, "Value": f"v-{k}"} for k in keys]


def every_page(store: TagStore, arn: str, limit: int) -> list[list[str]]:
    pages, after = [], None
    while True:
        page, after = store.list(arn, after, limit)
        pages.append([t["Key"] for t in page])
        if after is None:
            return pages


def test_pages_follow_the_order_of_first_add_while_tags_change(tmp_path, database_env, arn):
    store = TagStore(Settings(home=tmp_path).database_url, exists=lambda given: given == arn)
    store.add(arn, tags("e", "d", "c", "b", "a"))
    first, after = store.list(arn, None, 2)
    assert [t["Key"] for t in first] == ["e", "d"]
    store.delete(arn, ["c", "e"])  # one on the page already read, one ahead
    store.add(arn, tags("z", "d"))  # a new key goes last; an overwritten one keeps its place
    rest, after = store.list(arn, after, 2)
    assert [t["Key"] for t in rest] == ["b", "a"]
    last, after = store.list(arn, after, 2)
    assert ([t["Key"] for t in last], after) == (["z"], None)
    assert every_page(store, arn, 3) == [["d", "b", "a"], ["z"]]
    assert every_page(store, arn, 4) == [["d", "b", "a", "z"]]


def test_the_limit_and_unknown_resources(tmp_path, database_env, arn):
    store = TagStore(Settings(home=tmp_path).database_url, exists=lambda given: given == arn)
    store.add(arn, tags(*(f"k{i}" for i in range(49))))
    with pytest.raises(TooManyTags):
        store.add(arn, tags("x", "y"))
    assert len(store.list(arn, None, 100)[0]) == 49  # the refused add left nothing behind
    store.add(arn, tags("x"))
    with pytest.raises(UnknownResource, match="model/other-.* does not exist"):
        store.list(arn.replace("tagged", "other"), None, 50)


def test_an_arn_holding_a_nul_is_no_resource_on_either_engine(tmp_path, database_env):
    """PostgreSQL refuses to compare text holding a NUL; no resource's ARN holds one, so it is unknown."""
    nul = "arn:aws:sagemaker:us-east-1:000000000000:model/x\x00y"
    store = TagStore(Settings(home=tmp_path).database_url, exists=lambda given: True)
    for call in (lambda: store.list(nul, None, 5), lambda: store.add(nul, tags("a")),
                 lambda: store.delete(nul, ["a"])):
        with pytest.raises(UnknownResource):
            call()

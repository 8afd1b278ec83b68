import time

from forklift.registry import scopes
from forklift.registry.tokens import EXPIRY_SKEW, TokenCache, token_from_response


def test_token_or_access_token_and_expiry_from_issued_at():
    now = time.time()
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 100))
    token = token_from_response({"access_token": "abc", "expires_in": 300, "issued_at": issued}, now=now)
    assert token.value == "abc"
    assert abs(token.expires_at - (now - 100 + 300 - EXPIRY_SKEW)) < 2
    assert "abc" not in repr(token)


def test_missing_expires_in_defaults_to_sixty_seconds():
    now = 1000.0
    token = token_from_response({"token": "t"}, now=now)
    assert token.expires_at == now + 60 - EXPIRY_SKEW


def test_cache_drops_expired_tokens():
    cache = TokenCache()
    key = cache.key("realm", "svc", ["repository:a:pull"])
    cache.put(key, token_from_response({"token": "t", "expires_in": 1}, now=time.time() - 5))
    assert cache.get(key) is None
    cache.put(key, token_from_response({"token": "t2", "expires_in": 300}))
    assert cache.get(key).value == "t2"
    assert cache.get(cache.key("realm", "svc", ["repository:b:pull"])) is None


def test_scopes_for_reads_writes_and_mounts():
    assert scopes.scopes_for("GET", "/v2/library/ubuntu/manifests/latest") == ["repository:library/ubuntu:pull"]
    assert scopes.scopes_for("POST", "/v2/team/app/blobs/uploads/", ["repository:team/base:pull"]) == [
        "repository:team/app:pull,push", "repository:team/base:pull"]
    assert scopes.scopes_for("GET", "/v2/") == []


def test_scope_names_may_contain_colons_and_merge_per_resource():
    assert scopes.split("repository:host:5000/x:pull,push") == ("repository", "host:5000/x", ["pull", "push"])
    assert scopes.merge(["repository:a:pull", "repository:a:push,pull", "registry:catalog:*"]) == [
        "registry:catalog:*", "repository:a:pull,push"]

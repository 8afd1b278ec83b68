from __future__ import annotations

import dataclasses

import pytest

from forklift.reference import (
    DOCKER_HUB,
    DOCKER_HUB_API_HOST,
    InvalidReference,
    Reference,
    normalize_registry,
    parse,
    parse_digest,
)

SHA = "sha256:" + "0123456789abcdef" * 4
SHA512 = "sha512:" + "0123456789abcdef" * 8
HUB = "registry-1.docker.io"

# text, registry, repository, tag, digest, str(), familiar(), api_host
VALID = [
    ("ubuntu", "docker.io", "library/ubuntu", "latest", None,
     "docker.io/library/ubuntu:latest", "ubuntu:latest", HUB),
    ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None,
     "docker.io/library/ubuntu:22.04", "ubuntu:22.04", HUB),
    ("tensorflow/tensorflow:1.5.1-gpu", "docker.io", "tensorflow/tensorflow", "1.5.1-gpu", None,
     "docker.io/tensorflow/tensorflow:1.5.1-gpu", "tensorflow/tensorflow:1.5.1-gpu", HUB),
    ("myteam.myorg.com/docker-local/my-training-image:v1", "myteam.myorg.com",
     "docker-local/my-training-image", "v1", None,
     "myteam.myorg.com/docker-local/my-training-image:v1",
     "myteam.myorg.com/docker-local/my-training-image:v1", "myteam.myorg.com"),
    (f"localhost:5443/demo/tiny@{SHA}", "localhost:5443", "demo/tiny", None, SHA,
     f"localhost:5443/demo/tiny@{SHA}", f"localhost:5443/demo/tiny@{SHA}", "localhost:5443"),
    ("localhost:5443/demo/tiny:1.0", "localhost:5443", "demo/tiny", "1.0", None,
     "localhost:5443/demo/tiny:1.0", "localhost:5443/demo/tiny:1.0", "localhost:5443"),
    ("docker.io/myorganization/my_private_repo:latest", "docker.io", "myorganization/my_private_repo",
     "latest", None, "docker.io/myorganization/my_private_repo:latest",
     "myorganization/my_private_repo:latest", HUB),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/ns/repo",
     "123456789012.dkr.ecr.us-east-1.amazonaws.com", "ns/repo", "latest", None,
     "123456789012.dkr.ecr.us-east-1.amazonaws.com/ns/repo:latest",
     "123456789012.dkr.ecr.us-east-1.amazonaws.com/ns/repo:latest",
     "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
    ("gcr.io/project/repo:tag", "gcr.io", "project/repo", "tag", None,
     "gcr.io/project/repo:tag", "gcr.io/project/repo:tag", "gcr.io"),
    # Legacy Hub name and explicit docker.io both normalize; single components get library/.
    ("index.docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest", None,
     "docker.io/library/ubuntu:latest", "ubuntu:latest", HUB),
    ("index.docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", None,
     "docker.io/library/ubuntu:latest", "ubuntu:latest", HUB),
    ("docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", None,
     "docker.io/library/ubuntu:latest", "ubuntu:latest", HUB),
    ("library/ubuntu", "docker.io", "library/ubuntu", "latest", None,
     "docker.io/library/ubuntu:latest", "ubuntu:latest", HUB),
    # Hub namespaces can nest; "library/" is only dropped when one component remains.
    ("library/a/b", "docker.io", "library/a/b", "latest", None,
     "docker.io/library/a/b:latest", "library/a/b:latest", HUB),
    # The trap: a port needs a path after it, otherwise it is a tag.
    ("foo:5000", "docker.io", "library/foo", "5000", None,
     "docker.io/library/foo:5000", "foo:5000", HUB),
    ("foo:5000/bar", "foo:5000", "bar", "latest", None,
     "foo:5000/bar:latest", "foo:5000/bar:latest", "foo:5000"),
    ("foo:5000/bar:5000", "foo:5000", "bar", "5000", None,
     "foo:5000/bar:5000", "foo:5000/bar:5000", "foo:5000"),
    ("localhost/foo", "localhost", "foo", "latest", None,
     "localhost/foo:latest", "localhost/foo:latest", "localhost"),
    ("localhost", "docker.io", "library/localhost", "latest", None,
     "docker.io/library/localhost:latest", "localhost:latest", HUB),
    ("myhost/foo", "docker.io", "myhost/foo", "latest", None,
     "docker.io/myhost/foo:latest", "myhost/foo:latest", HUB),
    ("127.0.0.1:5000/x", "127.0.0.1:5000", "x", "latest", None,
     "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest", "127.0.0.1:5000"),
    ("[::1]:5000/foo/bar:v2", "[::1]:5000", "foo/bar", "v2", None,
     "[::1]:5000/foo/bar:v2", "[::1]:5000/foo/bar:v2", "[::1]:5000"),
    ("[2001:db8::1]/foo", "[2001:db8::1]", "foo", "latest", None,
     "[2001:db8::1]/foo:latest", "[2001:db8::1]/foo:latest", "[2001:db8::1]"),
    # Hosts are case-insensitive; uppercase is fine there and folded.
    ("Registry.Example.COM:443/team/img", "registry.example.com:443", "team/img", "latest", None,
     "registry.example.com:443/team/img:latest", "registry.example.com:443/team/img:latest",
     "registry.example.com:443"),
    # Tag and digest together: both kept, digest is what gets pulled.
    (f"ubuntu:22.04@{SHA}", "docker.io", "library/ubuntu", "22.04", SHA,
     f"docker.io/library/ubuntu:22.04@{SHA}", f"ubuntu:22.04@{SHA}", HUB),
    (f"ubuntu@{SHA512}", "docker.io", "library/ubuntu", None, SHA512,
     f"docker.io/library/ubuntu@{SHA512}", f"ubuntu@{SHA512}", HUB),
    # Separators: '.', '_', '__' and any run of '-'.
    ("a__b", "docker.io", "library/a__b", "latest", None,
     "docker.io/library/a__b:latest", "a__b:latest", HUB),
    ("a_b-c--d/e.f", "docker.io", "a_b-c--d/e.f", "latest", None,
     "docker.io/a_b-c--d/e.f:latest", "a_b-c--d/e.f:latest", HUB),
    ("x:_private.Tag-1", "docker.io", "library/x", "_private.Tag-1", None,
     "docker.io/library/x:_private.Tag-1", "x:_private.Tag-1", HUB),
    ("x:" + "t" * 128, "docker.io", "library/x", "t" * 128, None,
     "docker.io/library/x:" + "t" * 128, "x:" + "t" * 128, HUB),
    # 32+ hex digits as a tag is an ordinary tag, not a digest.
    ("app:" + "ab" * 20, "docker.io", "library/app", "ab" * 20, None,
     "docker.io/library/app:" + "ab" * 20, "app:" + "ab" * 20, HUB),
]


@pytest.mark.parametrize(
    "text,registry,repository,tag,digest,canonical,familiar,api_host",
    VALID,
    ids=[v[0][:60] for v in VALID],
)
def test_parse_valid(text, registry, repository, tag, digest, canonical, familiar, api_host):
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert str(ref) == canonical
    assert ref.familiar() == familiar
    assert ref.api_host == api_host
    assert ref.name == f"{registry}/{repository}"
    assert ref.identifier == (digest or tag)
    # Both printed forms parse back to the same reference.
    assert parse(canonical) == ref
    assert parse(familiar) == ref


# text, expected message substring
INVALID = [
    ("", "empty reference"),
    ("Foo/bar", "repository name must be lowercase"),
    ("Foo/bar", "'Foo:443/bar'"),
    ("UBUNTU", "repository name must be lowercase"),
    ("Foo/Bar", "repository name must be lowercase"),
    ("gcr.io/Project/repo", "repository name must be lowercase"),
    ("x:" + "t" * 129, "tag longer than 128 characters"),
    ("a/b:", "empty tag"),
    ("a:.b", "must not start with '.' or '-'"),
    ("a:-b", "must not start with '.' or '-'"),
    # A first component with '.' or ':' is always a host, as in docker.
    ("a:b/c", "invalid registry host 'a:b'"),
    ("my_team.v2/img", "invalid registry host 'my_team.v2'"),
    ("a/b:c:d", "must not start with '.' or '-'"),
    ("a//b", "empty path component"),
    ("a/", "empty path component"),
    ("/a", "empty path component"),
    ("gcr.io/", "empty path component"),
    ("a___b", "invalid path component 'a___b'"),
    ("-a", "invalid path component '-a'"),
    ("a-", "invalid path component 'a-'"),
    ("a.", "invalid path component 'a.'"),
    ("a._b", "invalid path component 'a._b'"),
    ("ub untu", "invalid path component"),
    ("0123456789abcdef" * 4, "looks like an image ID, not a reference"),
    (SHA, "looks like a bare digest"),
    ("https://gcr.io/p/r", "no URL scheme"),
    ("a@", "empty digest"),
    (f"@{SHA}", "missing repository name"),
    ("a@sha256:" + "0123456789ABCDEF" * 4, "sha256 digests are 64 lowercase hex characters"),
    ("a@sha256:abcd", "invalid digest"),
    ("a@sha256:" + "ab" * 20, "sha256 digests are 64 lowercase hex characters"),
    ("a@sha512:" + "ab" * 32, "sha512 digests are 128 lowercase hex characters"),
    ("a@md5:" + "ab" * 16, "unsupported algorithm 'md5'"),
    ("a@notadigest", "expected algorithm:hex"),
    (f"a@{SHA}@{SHA}", "invalid digest"),
    ("foo_bar:5000/x", "invalid registry host 'foo_bar:5000'"),
    ("-host.com/x", "invalid registry host"),
    ("host.com:port/x", "invalid registry host"),
    ("registry.example.com/" + "a" * 240, "repository name longer than 255 characters"),
    ("a" * 250, "repository name longer than 255 characters"),  # counts docker.io/library/
]


@pytest.mark.parametrize("text,message", INVALID, ids=[t[:40] or "<empty>" for t, _ in INVALID])
def test_parse_invalid(text, message):
    with pytest.raises(InvalidReference, match=None) as info:
        parse(text)
    assert message in str(info.value)
    if text:
        assert str(info.value).startswith(f"invalid reference {text!r}: ")


def test_invalid_reference_is_value_error():
    with pytest.raises(ValueError):
        parse("Foo/bar")


def test_name_length_limit_is_inclusive():
    # docker.io/ (10) + library/ (8) + 237 = 255
    assert parse("a" * 237).repository == "library/" + "a" * 237
    with pytest.raises(InvalidReference, match="longer than 255"):
        parse("a" * 238)


def test_default_tag():
    assert parse("ubuntu", default_tag="stable").tag == "stable"
    assert parse("ubuntu:1", default_tag="stable").tag == "1"
    assert parse(f"ubuntu@{SHA}", default_tag="stable").tag is None
    with pytest.raises(InvalidReference, match="invalid default tag"):
        parse("ubuntu", default_tag="-bad")


def test_constants():
    assert DOCKER_HUB == "docker.io"
    assert DOCKER_HUB_API_HOST == "registry-1.docker.io"


def test_reference_is_frozen_and_hashable():
    ref = parse("ubuntu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "x"  # type: ignore[misc]
    assert {ref, parse("docker.io/library/ubuntu:latest")} == {ref}


def test_with_digest_keeps_tag():
    ref = parse("ubuntu:22.04").with_digest(SHA)
    assert (ref.tag, ref.digest, ref.identifier) == ("22.04", SHA, SHA)
    assert str(ref) == f"docker.io/library/ubuntu:22.04@{SHA}"
    with pytest.raises(InvalidReference, match="sha256 digests are 64 lowercase hex"):
        parse("ubuntu").with_digest("sha256:" + "0" * 63)


def test_with_tag_drops_digest():
    ref = parse(f"localhost:5443/demo/tiny:1.0@{SHA}").with_tag("2.0")
    assert ref == Reference("localhost:5443", "demo/tiny", "2.0", None)
    assert ref.identifier == "2.0"
    with pytest.raises(InvalidReference, match="tag longer than 128 characters"):
        ref.with_tag("t" * 129)
    with pytest.raises(InvalidReference, match="empty tag"):
        ref.with_tag("")


@pytest.mark.parametrize("digest", [SHA, SHA512])
def test_parse_digest_valid(digest):
    assert parse_digest(digest) == digest


@pytest.mark.parametrize(
    "digest,message",
    [
        ("", "expected algorithm:hex"),
        ("sha256", "expected algorithm:hex"),
        ("sha256:" + "0" * 63, "sha256 digests are 64 lowercase hex characters"),
        ("sha256:" + "0" * 65, "sha256 digests are 64 lowercase hex characters"),
        ("sha256:" + "A" * 64, "sha256 digests are 64 lowercase hex characters"),
        ("sha512:" + "0" * 64, "sha512 digests are 128 lowercase hex characters"),
        ("sha256:" + "g" * 64, "expected algorithm:hex"),
        ("md5:" + "0" * 32, "unsupported algorithm 'md5'"),
        ("sha384:" + "0" * 96, "unsupported algorithm 'sha384'"),
        ("SHA256:" + "0" * 64, "unsupported algorithm 'SHA256'"),
    ],
)
def test_parse_digest_invalid(digest, message):
    with pytest.raises(InvalidReference) as info:
        parse_digest(digest)
    assert str(info.value).startswith("invalid digest ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    "host,expected",
    [
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("https://registry-1.docker.io/v2/", "docker.io"),
        ("Index.Docker.IO", "docker.io"),
        ("localhost:5443", "localhost:5443"),
        ("http://localhost:5000/", "localhost:5000"),
        ("HTTPS://MyTeam.MyOrg.com:8443/v2/", "myteam.myorg.com:8443"),
        ("gcr.io", "gcr.io"),
        ("[::1]:5000", "[::1]:5000"),
        (" ghcr.io ", "ghcr.io"),
    ],
)
def test_normalize_registry(host, expected):
    assert normalize_registry(host) == expected


@pytest.mark.parametrize("host", ["", "   ", "https://", "https:///v1/"])
def test_normalize_registry_empty(host):
    with pytest.raises(InvalidReference, match="empty registry host"):
        normalize_registry(host)

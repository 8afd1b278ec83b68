"""Registry credentials as a dockerconfigjson Secret: what the kubelet decodes, and nowhere else."""

from __future__ import annotations

import base64
import json

import kubernetes_validate
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kube_apirules import dockerconfigjson, problems

from fixtures import secretscan
from forklift.kube.errors import InvalidObject
from forklift.kube.names import training_labels
from forklift.kube.objects import pull_secret, redacted, to_yaml
from forklift.kube.pullsecrets import DOCKER_HUB_KEY, registry_key
from forklift.kube.settings import KubeSettings

SETTINGS = KubeSettings(namespace="forklift")
LABELS = training_labels("My-Job")
USER = "ci-robot"
PASSWORD = 'kube-pull-"pass":word\n\u00e9\u2603'
secretscan.register("the kube tests' registry password", PASSWORD, user=USER)


def auth_of(secret: dict, key: str) -> str:
    return base64.b64decode(dockerconfigjson(secret)["auths"][key]["auth"]).decode()


def test_the_secret_decodes_to_docker_auths_as_the_kubelet_reads_them():
    secret = pull_secret("ps-my-job", "registry.example.com:5000", USER, PASSWORD, LABELS, SETTINGS)
    kubernetes_validate.validate(secret, kubernetes_validate.latest_version(), strict=True)
    assert problems(secret) == []
    assert (secret["apiVersion"], secret["kind"], secret["type"]) == ("v1", "Secret", "kubernetes.io/dockerconfigjson")
    assert secret["metadata"] == {"name": "ps-my-job", "namespace": "forklift", "labels": LABELS}
    assert list(secret["data"]) == [".dockerconfigjson"] and "stringData" not in secret
    config = dockerconfigjson(secret)
    assert config == {"auths": {"registry.example.com:5000": {
        "auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}
    assert auth_of(secret, "registry.example.com:5000") == f"{USER}:{PASSWORD}"


@pytest.mark.parametrize("host", ["docker.io", "registry-1.docker.io", "index.docker.io", "https://index.docker.io/v1/",
                                  "Docker.IO"])
def test_docker_hub_is_dockers_own_key(host):
    assert registry_key(host) == DOCKER_HUB_KEY
    secret = pull_secret("ps-hub", host, USER, PASSWORD, LABELS, SETTINGS)
    assert list(dockerconfigjson(secret)["auths"]) == [DOCKER_HUB_KEY]


def test_other_registries_are_their_host_and_port():
    assert registry_key("ghcr.io") == "ghcr.io"
    assert registry_key("https://Registry.Example.com:5000/v2/") == "registry.example.com:5000"
    ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert registry_key(ecr) == ecr
    for bad in ("", "   ", "bad host", "-x.example"):
        with pytest.raises(InvalidObject, match="registry"):
            registry_key(bad)


PASSWORDS = st.text(min_size=1, max_size=300)
USERS = st.text(min_size=1, max_size=60).filter(lambda u: ":" not in u)


@given(USERS, PASSWORDS)
def test_any_password_round_trips_through_the_secret(user, password):
    secret = pull_secret("ps-x", "registry.example.com", user, password, LABELS, SETTINGS)
    assert problems(secret) == []
    assert auth_of(secret, "registry.example.com") == f"{user}:{password}"


def spellings(value: str, user: str) -> list[str]:
    return [s.decode() for s in secretscan.encodings(value, user)]


@given(st.text(min_size=0, max_size=200))
def test_redacted_yaml_holds_no_trace_of_the_password(tail):
    password = "Xq7-distinct:\"'\n" + tail  # a prefix no YAML of these objects holds by chance
    secret = pull_secret("ps-x", "registry.example.com", USER, password, LABELS, SETTINGS)
    shown = to_yaml([secret])
    assert to_yaml([redacted(secret)]) == shown  # to_yaml redacts by default
    assert "<redacted>" in shown and secret["data"][".dockerconfigjson"] not in shown
    for spelling in spellings(password, USER):
        assert spelling not in shown
    # What was hidden is still in the object itself, untouched by redacted().
    assert auth_of(secret, "registry.example.com") == f"{USER}:{password}"


def test_redacted_reaches_secrets_inside_lists_and_string_data():
    secret = pull_secret("ps-x", "registry.example.com", USER, PASSWORD, LABELS, SETTINGS)
    plain = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": PASSWORD}}
    listing = {"apiVersion": "v1", "kind": "List", "items": [secret, plain, {"kind": "ConfigMap", "data": {"k": "v"}}]}
    hidden = redacted(listing)
    assert hidden["items"][0]["data"] == {".dockerconfigjson": "<redacted>"}
    assert hidden["items"][1]["stringData"] == {"password": "<redacted>"}
    assert hidden["items"][2]["data"] == {"k": "v"}  # not a Secret
    text = json.dumps(hidden)
    assert all(s not in text for s in spellings(PASSWORD, USER))
    assert listing["items"][0]["data"] != hidden["items"][0]["data"]  # a copy: the original is untouched


def test_an_unredacted_manifest_is_asked_for_by_name():
    secret = pull_secret("ps-x", "registry.example.com", USER, PASSWORD, LABELS, SETTINGS)
    assert secret["data"][".dockerconfigjson"] in to_yaml([secret], redact=False)


@pytest.mark.parametrize(("user", "password", "says"), [
    ("", PASSWORD, "one was empty"), (USER, "", "one was empty"),
    ("robot:" + PASSWORD, PASSWORD, "cannot contain ':'"),
    (USER, PASSWORD * 10_000, "longer than 64 KiB"),
])
def test_refusals_name_neither_the_username_nor_the_password(user, password, says):
    with pytest.raises(InvalidObject) as caught:
        pull_secret("ps-x", "registry.example.com", user, password, LABELS, SETTINGS)
    message = str(caught.value)
    assert says in message
    assert all(s not in message for s in spellings(PASSWORD, USER)) and USER not in message


def test_a_secret_name_is_a_dns_subdomain():
    with pytest.raises(InvalidObject, match="Secret name 'PS_X'"):
        pull_secret("PS_X", "registry.example.com", USER, PASSWORD, LABELS, SETTINGS)


def test_the_secret_rules_can_fail():
    secret = pull_secret("ps-x", "registry.example.com", USER, PASSWORD, LABELS, SETTINGS)
    no_colon = json.dumps({"auths": {"r": {"auth": base64.b64encode(b"nocolon").decode()}}})
    broken = {**secret, "data": {".dockerconfigjson": base64.b64encode(no_colon.encode()).decode()}}
    assert problems(broken) == ["Secret auths[r].auth is not base64(user:password)"]
    garbage = {**secret, "data": {".dockerconfigjson": "not base64!"}}
    assert problems(garbage) == ["Secret .dockerconfigjson does not decode to {auths: ...}: Error"]

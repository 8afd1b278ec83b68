"""Object names and label values from SageMaker names: always what Kubernetes accepts, one per name."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kube_apirules import dns1035_label, dns1123_label, dns1123_subdomain, label_key, label_value

from forklift.config import SCHEMA
from forklift.kube import names
from forklift.kube.names import is_dns1123_label, is_dns1123_subdomain, object_name

# SageMaker's pattern for TrainingJobName, EndpointName, VariantName, ... (and MaxLength 63).
SAGEMAKER_NAME = st.from_regex(r"\A[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}\Z").filter(lambda s: len(s) <= 63)
PREFIXES = st.sampled_from(["tj", "ep", "svc", "ps", "np"])
NEARLY_DNS = st.text(alphabet="abzAZ09-._/", max_size=80)


def short_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def test_a_name_that_fits_is_kept_and_one_that_does_not_is_hashed():
    assert object_name("tj", "my-job") == "tj-my-job"
    assert object_name("tj", "My-Job") == f"tj-my-job-{short_hash('My-Job')}"
    long = "A" + "b" * 62
    assert object_name("tj", long) == f"tj-{long.lower()[:51]}-{short_hash(long)}"
    assert len(object_name("tj", long)) == 63


def test_names_differing_only_in_case_get_different_objects():
    spellings = ["my-job", "My-Job", "MY-JOB", "mY-jOb"]
    assert len({object_name("tj", s) for s in spellings}) == len(spellings)


def test_a_plain_name_never_takes_the_shape_of_a_hashed_one():
    """'foo-<8 hex>' would be the hashed form of some other name ('Foo'): it is hashed itself."""
    disguised = f"my-job-{short_hash('My-Job')}"
    assert object_name("tj", disguised) != object_name("tj", "My-Job")
    assert object_name("tj", disguised) == f"tj-{disguised}-{short_hash(disguised)}"
    assert object_name("tj", "deadbeef") == f"tj-deadbeef-{short_hash('deadbeef')}"  # "tj-deadbeef" has the shape


def test_a_kind_prefix_must_make_a_dns1035_label():
    for bad in ("", "Tj", "1x", "t-j", "abcdefghijk"):
        with pytest.raises(ValueError, match="kind prefix"):
            object_name(bad, "job")


@given(PREFIXES, SAGEMAKER_NAME)
def test_object_name_is_always_a_dns_label(prefix, name):
    made = object_name(prefix, name)
    assert dns1123_label(made) and dns1035_label(made) and len(made) <= 63
    assert made == object_name(prefix, name)  # deterministic
    assert made.startswith(prefix + "-")


@given(PREFIXES, st.text(max_size=100))
def test_object_name_is_a_dns_label_even_for_names_sagemaker_refuses(prefix, name):
    assert dns1123_label(object_name(prefix, name))


@given(st.lists(SAGEMAKER_NAME, unique=True, max_size=40))
def test_object_name_is_injective_on_a_sample(sample):
    with_cases = sorted(set(sample) | {s.swapcase() for s in sample} | {s.upper() for s in sample})
    made = [object_name("tj", s) for s in with_cases]
    assert len(set(made)) == len(made)


@given(SAGEMAKER_NAME)
def test_a_sagemaker_name_is_its_own_label_value(name):
    assert names.label_value(name) == name and label_value(name)


@given(st.text(max_size=120))
def test_any_value_becomes_a_valid_label_value(value):
    made = names.label_value(value)
    assert label_value(made)
    assert (made == value) == label_value(value)


def test_label_helpers_name_the_job_and_forklift():
    assert names.training_labels("My-Job") == {names.TRAINING_JOB: "My-Job", names.MANAGED_BY: "forklift"}
    variant = names.variant_labels("Ep", "AllTraffic", 3)
    assert variant == {names.ENDPOINT: "Ep", names.VARIANT: "AllTraffic", names.GENERATION: "3",
                       names.MANAGED_BY: "forklift"}
    assert all(label_key(k) for k in variant)


def _config_accepts(key: str, value: object) -> bool:
    table = SCHEMA["kubernetes"]
    assert isinstance(table, dict)
    return table[key].check(value) is None


@given(NEARLY_DNS)
def test_the_config_checks_and_the_object_checks_agree(value):
    """config.py keeps its own copy of the DNS rules (it sits below forklift.kube): the same answers."""
    assert _config_accepts("namespace", value) == is_dns1123_label(value) == dns1123_label(value)
    assert _config_accepts("volume_claim", value) == is_dns1123_subdomain(value) == dns1123_subdomain(value)
    assert _config_accepts("node_selector", {value: "v"}) == names.is_label_key(value) == label_key(value)
    assert _config_accepts("node_selector", {"k": value}) == names.is_label_value(value) == label_value(value)


def test_boundaries_of_the_dns_rules():
    assert is_dns1123_label("a" * 63) and not is_dns1123_label("a" * 64)
    assert not is_dns1123_label("-a") and not is_dns1123_label("a-") and not is_dns1123_label("A")
    assert is_dns1123_subdomain(".".join(["a" * 63] * 3)) and not is_dns1123_subdomain("a" * 254)
    assert not is_dns1123_subdomain("a..b") and not is_dns1123_subdomain(".a")
    assert names.is_dns1035_label("a1") and not names.is_dns1035_label("1a")
    assert names.is_label_key("example.com/" + "a" * 63) and not names.is_label_key("a" * 64)
    assert not names.is_label_key("Example.com/a") and not names.is_label_key("a/b/c")
    assert re.fullmatch(r"[0-9a-f]{8}", names.label_value("!" * 10))

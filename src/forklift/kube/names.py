"""Kubernetes names and labels for SageMaker names, and the label keys forklift puts on its objects.

SageMaker names (`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`) may hold uppercase letters and run to 63
characters; an object's name must be a DNS-1123 label (at most 63 lowercase letters, digits and
'-'). `object_name` keeps a name that already fits as it is, behind a short kind prefix ("tj-my-job"),
and otherwise lowercases and truncates it and appends 8 hex digits of the SHA-256 of the *original*
name ("tj-my-job-1a2b3c4d"). The rule is deterministic and keeps the two forms apart:

- a plain name never ends in "-" and 8 hex digits: one that would is hashed too, so no plain name
  can equal another name's hashed form;
- two names differing only in case, or only past the kept prefix, differ in their hash; they meet
  only if 32 bits of SHA-256 collide (about one pair in four billion), and even then the
  `forklift.io/training-job` (or `endpoint`) label on the object carries the exact SageMaker name,
  so the backend can tell an object of another job from its own.

The prefix starts with a letter, so every object name is also a DNS-1035 label (what a Service's
name must be). Label values keep the SageMaker name exactly (uppercase is allowed there); a value
that does not fit the label-value rules falls back to the same hashed form.
"""

from __future__ import annotations

import hashlib
import re

TRAINING_JOB = "forklift.io/training-job"  # the SageMaker name of the training job an object runs
ENDPOINT = "forklift.io/endpoint"  # the endpoint a Deployment or Service serves
VARIANT = "forklift.io/variant"  # ... and its production variant
GENERATION = "forklift.io/generation"  # which configuration of the endpoint (UpdateEndpoint makes a new one)
MANAGED_BY = "forklift.io/managed-by"  # on every object forklift creates, so it can list and remove its own
MANAGED_BY_VALUE = "forklift"

MAX_LABEL = 63
MAX_SUBDOMAIN = 253
HASH_HEX = 8

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,9}")
_HASHED_TAIL = re.compile(rf"-[0-9a-f]{{{HASH_HEX}}}")


def is_dns1123_label(s: str) -> bool:
    """What a namespace, a Job's or a container's name must be (apimachinery's IsDNS1123Label)."""
    return len(s) <= MAX_LABEL and _DNS1123_LABEL.fullmatch(s) is not None


def is_dns1123_subdomain(s: str) -> bool:
    """What a Secret's or a claim's name must be (IsDNS1123Subdomain)."""
    return len(s) <= MAX_SUBDOMAIN and _DNS1123_SUBDOMAIN.fullmatch(s) is not None


def is_dns1035_label(s: str) -> bool:
    """What a Service's name must be: a DNS-1123 label that starts with a letter (IsDNS1035Label)."""
    return len(s) <= MAX_LABEL and _DNS1035_LABEL.fullmatch(s) is not None


def is_label_value(s: str) -> bool:
    return len(s) <= MAX_LABEL and _LABEL_VALUE.fullmatch(s) is not None


def is_label_key(s: str) -> bool:
    """A qualified name: an optional DNS-1123 subdomain and '/', then a name of at most 63 characters."""
    prefix, slash, name = s.rpartition("/")
    if slash and not is_dns1123_subdomain(prefix):
        return False
    return len(name) <= MAX_LABEL and _LABEL_NAME.fullmatch(name) is not None


def _hash(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_HEX]


def object_name(kind_prefix: str, name: str) -> str:
    """A DNS-1123 (and DNS-1035) label naming the object of kind `kind_prefix` ("tj", "ep", ...) for
    `name`: "<prefix>-<name>" when that fits as it is, else the lowercased, truncated name and a hash."""
    if not _PREFIX.fullmatch(kind_prefix):
        raise ValueError(f"kind prefix {kind_prefix!r}: 1-10 lowercase letters and digits, starting with a letter")
    plain = f"{kind_prefix}-{name}"
    if is_dns1123_label(plain) and not _HASHED_TAIL.fullmatch(plain[-(HASH_HEX + 1):]):
        return plain
    room = MAX_LABEL - len(kind_prefix) - 1 - (HASH_HEX + 1)
    stem = re.sub(r"[^a-z0-9-]+", "-", name.lower())[:room].strip("-")
    return f"{kind_prefix}-{stem}-{_hash(name)}" if stem else f"{kind_prefix}-{_hash(name)}"


def label_value(value: str) -> str:
    """`value` itself when it is a valid label value (every SageMaker name is), else a hashed form."""
    if is_label_value(value):
        return value
    room = MAX_LABEL - (HASH_HEX + 1)
    stem = re.sub(r"[^-A-Za-z0-9_.]+", "-", value)[:room].strip("-_.")
    return f"{stem}-{_hash(value)}" if stem else _hash(value)


def training_labels(job_name: str) -> dict[str, str]:
    """The labels of a training job's objects (Job, pod, Secret, NetworkPolicy)."""
    return {TRAINING_JOB: label_value(job_name), MANAGED_BY: MANAGED_BY_VALUE}


def variant_labels(endpoint: str, variant: str, generation: int) -> dict[str, str]:
    """The labels of one production variant's objects in one generation of an endpoint."""
    return {ENDPOINT: label_value(endpoint), VARIANT: label_value(variant), GENERATION: str(generation),
            MANAGED_BY: MANAGED_BY_VALUE}

"""Labels on forklift's objects: checked against Kubernetes' rules, and always naming forklift."""

from __future__ import annotations

from collections.abc import Mapping

from forklift.kube.errors import InvalidObject
from forklift.kube.names import MANAGED_BY, MANAGED_BY_VALUE, is_label_key, is_label_value


def checked_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """`labels` and `forklift.io/managed-by: forklift`, each key and value valid, else InvalidObject."""
    for key, value in labels.items():
        if not isinstance(key, str) or not is_label_key(key):
            raise InvalidObject(f"label key {key!r}: an optional DNS subdomain and '/', then at most 63 "
                                "letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
        if not isinstance(value, str) or not is_label_value(value):
            raise InvalidObject(f"label {key}={value!r}: a value is at most 63 letters, digits, '-', '_' or '.', "
                                "starting and ending with a letter or digit (forklift.kube.names.label_value)")
    if labels.get(MANAGED_BY, MANAGED_BY_VALUE) != MANAGED_BY_VALUE:
        raise InvalidObject(f"label {MANAGED_BY} is forklift's own, and must be {MANAGED_BY_VALUE!r}")
    return {**labels, MANAGED_BY: MANAGED_BY_VALUE}

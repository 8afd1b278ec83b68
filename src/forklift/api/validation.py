"""Validate requests against botocore's own service models, worded the way AWS words it.

botocore's client checks only `required`, types and `min`; AWS checks the rest on the server, and
so do we: required members, JSON types, enums, lengths of strings/lists/maps/blobs, numeric
ranges and (Java) patterns, collecting *every* violation into one message:

    2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member
    must not be null; Value 'a_b' at 'trainingJobName' failed to satisfy constraint: Member must
    satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}

Violations come in AWS's order (see `forklift.api.coral`); within one member: length, range,
pattern, enum. Values of `sensitive` members are never echoed (`Value at '…'`).

A value of the wrong JSON type is a `SerializationException` (as on AWS, raised at once, before any
constraint is checked). Members the model does not know are tolerated and dropped: AWS ignores
them and botocore never sends them. The returned copy is typed for handlers: timestamps become
aware `datetime`s, blobs `bytes`, and integers stay integers (a number with a fraction sent for an
integer member is of the wrong type).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from forklift.api.coral import element_path, hashmap_order, java_double, join_path, lower_camel, render_value
from forklift.api.errors import ApiError
from forklift.api.javaregex import Unsupported, compile_java

log = logging.getLogger(__name__)

_lock = threading.Lock()
_INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_JAVA_TYPE = {"string": "String", "integer": "Integer", "long": "Long", "float": "Float", "double": "Double",
              "boolean": "Boolean", "timestamp": "Date", "blob": "ByteBuffer"}
# Enum sets whose order in AWS's messages has been observed and differs from the model's order.
AWS_ENUM_ORDER = {"TrainingInputMode": ("Pipe", "FastFile", "File")}


@functools.cache
def service_model(service: str) -> ServiceModel:
    """botocore's model for `service` ("sagemaker", "sagemaker-runtime", "logs"), loaded once."""
    with _lock:
        return botocore.session.get_session().get_service_model(service)


def compile_patterns(service: str) -> None:
    """Translate every pattern of a model ahead of time (about 0.5 s), so no request pays for it."""
    model = service_model(service)
    for name in model.shape_names:
        pattern = model.shape_for(name).metadata.get("pattern")
        if pattern:
            _pattern(pattern)


@functools.cache
def _operation_names(service: str) -> frozenset[str]:
    return frozenset(service_model(service).operation_names)


def operation_model(service: str, operation: str) -> OperationModel | None:
    """botocore's model of `operation`, or None when the service has no such operation."""
    if operation not in _operation_names(service):
        return None
    return service_model(service).operation_model(operation)


def validate(service: str, operation: str, params: Any, *, error_code: str = "ValidationException") -> dict:
    """The typed, known-members-only copy of `params`, or ApiError(error_code) listing every violation."""
    op = operation_model(service, operation)
    if op is None:
        raise ApiError.unknown_operation(operation)
    if op.input_shape is None:
        return {}
    walk = _Walk()
    result = walk.value(op.input_shape, params, "", False)
    if walk.violations:
        count = len(walk.violations)
        plural = "s" if count > 1 else ""
        raise ApiError(error_code, f"{count} validation error{plural} detected: " + "; ".join(walk.violations))
    return result


@functools.cache
def flat_check(service: str, operation: str) -> Callable[[Mapping[str, Any]], bool]:
    """For an operation whose members are all strings and blobs: a predicate that is True only when
    `validate` would accept `params` unchanged. Hot paths run it first and call `validate` (and its
    wording) only when it says no."""
    op = operation_model(service, operation)
    assert op is not None and op.input_shape is not None, operation
    required = frozenset(op.input_shape.required_members)
    types = {"string": str, "blob": bytes}
    members = {}
    for name, shape in op.input_shape.members.items():
        if shape.type_name not in types:
            raise ValueError(f"{operation}.{name} is a {shape.type_name}: not a flat operation")
        members[name] = (types[shape.type_name], [c for c in _checks(shape) if c[0] != "pattern" or _pattern(c[1])])

    def accepts(params: Mapping[str, Any]) -> bool:
        if not required.issubset(params):
            return False
        for name, value in params.items():
            member = members.get(name)
            if member is None or type(value) is not member[0]:
                return False
            for check in member[1]:
                if not _passes(check, value):
                    return False
        return True

    return accepts


def _mismatch(value: Any, target: str) -> ApiError:
    if isinstance(value, dict):
        return ApiError.serialization("Start of structure or map found where not expected.")
    if isinstance(value, list):
        return ApiError.serialization("Start of list found where not expected")
    if isinstance(value, bool):
        token = "TRUE_VALUE" if value else "FALSE_VALUE"
    elif isinstance(value, (int, float)):
        token = "NUMBER_VALUE"
    else:
        token = "STRING_VALUE"
    return ApiError.serialization(f"{token} can not be converted to an {target}")


def _scalar(shape: Shape, value: Any) -> Any:
    """`value` converted to the shape's Python type, or a SerializationException."""
    kind = shape.type_name
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind in _INT_RANGE and number:
        low, high = _INT_RANGE[kind]
        # 2.0 or 1e3 is the integer it spells; 1.5 is no integer at all (never truncated to 1)
        if math.isfinite(value) and low <= value <= high and (type(value) is int or value.is_integer()):
            return int(value)
    elif kind in ("float", "double") and number:
        return float(value)
    elif kind == "timestamp" and (number or isinstance(value, str)):
        parsed = _timestamp(value)
        if parsed is not None:
            return parsed
    elif kind == "blob" and isinstance(value, (bytes, bytearray)):
        return bytes(value)
    elif kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError.serialization("Base64 encoded blob value is invalid.") from None
    raise _mismatch(value, _JAVA_TYPE.get(kind, kind))


def _timestamp(value: float | str) -> datetime | None:
    """Epoch seconds (number or numeric string) or ISO 8601; naive ISO is taken as UTC."""
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bound(shape: Shape, value: float) -> str:
    return java_double(float(value)) if shape.type_name in ("float", "double") else str(int(value))


def _enum_values(shape: Shape) -> list[str]:
    return list(AWS_ENUM_ORDER.get(shape.name, shape.enum))


@functools.cache
def _pattern(pattern: str):
    try:
        return compile_java(pattern)
    except Unsupported as exc:
        log.warning("pattern %r is not checked: %s", pattern, exc)
        return None


# forklift extensions to SageMaker's patterns: wherever SageMaker takes an S3 URI (channels, output
# paths, model data), a local `file:///absolute/path` is accepted too.
PATTERN_EXTENSIONS = {
    ("S3Uri", "(https|s3)://([^/]+)/?(.*)"): "(https|s3)://([^/]+)/?(.*)|file:///(.*)",
    ("Url", "(https|s3)://([^/]+)/?(.*)"): "(https|s3)://([^/]+)/?(.*)|file:///(.*)",
}


def _checks(shape: Shape) -> list[tuple[str, Any]]:
    """The shape's constraints in AWS's reporting order, as (kind, parameter)."""
    meta = shape.metadata
    sized = shape.type_name in ("string", "blob", "list", "map")
    numeric = shape.type_name in ("integer", "long", "float", "double")
    checks: list[tuple[str, Any]] = []
    if sized or numeric:
        prefix = "length" if sized else "value"
        if "max" in meta:
            checks.append((f"max-{prefix}", meta["max"]))
        if "min" in meta:
            checks.append((f"min-{prefix}", meta["min"]))
    if shape.type_name == "string" and meta.get("pattern"):
        checks.append(("pattern", PATTERN_EXTENSIONS.get((shape.name, meta["pattern"]), meta["pattern"])))
    if shape.type_name == "string" and getattr(shape, "enum", None):
        checks.append(("enum", _enum_values(shape)))
    return checks


# An enum longer than this is not spelled out (AWS prints all 277 instance types, 9,000 characters):
# the message names the nearest values instead, and where to see them all.
LONG_ENUM = 40
ENUM_LISTS = {"TrainingInstanceType": "forklift instance-types --training",
              "ProductionVariantInstanceType": "forklift instance-types --hosting"}


def _long_enum(shape: Shape, values: list[str], value: Any) -> str:
    close = difflib.get_close_matches(str(value), values, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ";"
    where = ENUM_LISTS.get(shape.name, "forklift instance-types" if shape.name.endswith("InstanceType") else None)
    listed = f" `{where}` lists them" if where else ""
    return f"Member must satisfy enum value set: [{len(values)} values of {shape.name}]{hint}{listed}"


def _describe(shape: Shape, check: tuple[str, Any], value: Any = None) -> str:
    kind, arg = check
    if kind == "max-length":
        return f"Member must have length less than or equal to {arg}"
    if kind == "min-length":
        return f"Member must have length greater than or equal to {arg}"
    if kind == "max-value":
        return f"Member must have value less than or equal to {_bound(shape, arg)}"
    if kind == "min-value":
        return f"Member must have value greater than or equal to {_bound(shape, arg)}"
    if kind == "pattern":
        return f"Member must satisfy regular expression pattern: {arg}"
    if len(arg) > LONG_ENUM:
        return _long_enum(shape, arg, value)
    return f"Member must satisfy enum value set: [{', '.join(arg)}]"


def _passes(check: tuple[str, Any], value: Any) -> bool:
    kind, arg = check
    if kind == "max-length":
        return len(value) <= arg
    if kind == "min-length":
        return len(value) >= arg
    if kind == "max-value":
        return value <= arg
    if kind == "min-value":
        return value >= arg
    if kind == "pattern":
        compiled = _pattern(arg)
        return compiled is None or compiled.fullmatch(value) is not None
    return value in arg


def _failures(shape: Shape, value: Any) -> list[str]:
    return [_describe(shape, check, value) for check in _checks(shape) if not _passes(check, value)]


@functools.lru_cache(maxsize=4096)
def _member_order(names: tuple[str, ...]) -> list[str]:
    by_camel = {lower_camel(name): name for name in names}
    return [by_camel[camel] for camel in hashmap_order(by_camel)]


# A refused value is echoed so the client sees which one; echoed whole, an 8 MiB value would make an
# 8 MiB answer (and log line). Past this many characters (twice the longest string member a list
# operation takes, its 8,192-character NextToken, which is echoed whole) only its start is shown, with its length.
ECHO_MAX = 16384


class _Walk:
    def __init__(self) -> None:
        self.violations: list[str] = []

    def add(self, path: str, value: Any, sensitive: bool, constraint: str) -> None:
        if value is None:
            shown = "Value null"
        elif sensitive:
            shown = "Value"
        else:
            rendered = render_value(value)
            if len(rendered) > ECHO_MAX:
                rendered = f"{rendered[:ECHO_MAX]}... ({len(rendered)} characters)"
            shown = f"Value '{rendered}'"
        self.violations.append(f"{shown} at '{path}' failed to satisfy constraint: {constraint}")

    def value(self, shape: Shape, value: Any, path: str, sensitive: bool) -> Any:
        sensitive = sensitive or bool(shape.metadata.get("sensitive"))
        if shape.type_name == "structure":
            if getattr(shape, "is_document_type", False):
                return value
            return self.structure(shape, value, path, sensitive)
        if shape.type_name == "list":
            return self.list(shape, value, path, sensitive)
        if shape.type_name == "map":
            return self.map(shape, value, path, sensitive)
        converted = _scalar(shape, value)
        for constraint in _failures(shape, converted):
            self.add(path, converted, sensitive, constraint)
        return converted

    def structure(self, shape: Shape, value: Any, path: str, sensitive: bool) -> dict:
        if not isinstance(value, dict):
            raise _mismatch(value, shape.name)
        members = shape.members
        required = set(shape.required_members)
        out = {}
        for name in _member_order(tuple(members)):
            child = join_path(path, lower_camel(name))
            raw = value.get(name)
            if raw is None:
                if name in required:
                    self.add(child, None, False, "Member must not be null")
                continue
            out[name] = self.value(members[name], raw, child, sensitive)
        return {name: out[name] for name in members if name in out}

    def list(self, shape: Shape, value: Any, path: str, sensitive: bool) -> list:
        if not isinstance(value, list):
            raise _mismatch(value, "List")
        for constraint in _failures(shape, value):
            self.add(path, value, sensitive, constraint)
        out = []
        for index, item in enumerate(value):
            if item is None:
                self.add(element_path(path, index), None, False, "Member must not be null")
                continue
            out.append(self.value(shape.member, item, element_path(path, index), sensitive))
        return out

    def map(self, shape: Shape, value: Any, path: str, sensitive: bool) -> dict:
        if not isinstance(value, dict):
            raise _mismatch(value, "Map")
        for constraint in _failures(shape, value):
            self.add(path, value, sensitive, constraint)
        key_shape, value_shape = shape.key, shape.value
        scalar_values = value_shape.type_name not in ("structure", "list", "map")
        bad_keys = bad_values = null_values = False
        out = {}
        for key, item in value.items():
            bad_keys = bad_keys or bool(_failures(key_shape, _scalar(key_shape, key)))
            if item is None:
                null_values = True
            elif scalar_values:
                out[key] = _scalar(value_shape, item)
                bad_values = bad_values or bool(_failures(value_shape, out[key]))
            else:
                out[key] = self.value(value_shape, item, join_path(path, key), sensitive)
        sensitive_values = sensitive or bool(value_shape.metadata.get("sensitive"))
        if bad_keys:
            self.add(path, value, sensitive_values, "Map keys must satisfy constraint: " + _all(key_shape))
        if bad_values or null_values:
            extra = ["Member must not be null"] if null_values else []
            self.add(path, value, sensitive_values, "Map value must satisfy constraint: " + _all(value_shape, extra))
        return out


def _all(shape: Shape, extra: Iterable[str] = ()) -> str:
    return "[" + ", ".join([_describe(shape, check) for check in _checks(shape)] + list(extra)) + "]"

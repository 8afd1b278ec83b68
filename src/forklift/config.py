"""Where forklift keeps its state, and the user's settings from `$FORKLIFT_HOME/config.toml`.

config.toml (every key optional):

    region = "us-east-1"
    account = "000000000000"
    insecure_registries = ["localhost:5000"]   # plain HTTP / unverified TLS, by explicit opt-in only
    max_concurrent_downloads = 6
    max_concurrent_uploads = 5
    file_roots = ["/data"]                     # the only host directories file:// may name (none by default)
    max_image_bytes = "20 GiB"   # unpacked size cap per image; default: free disk less a reserve
    max_image_files = 1000000    # entries (files, dirs, links) per image
    registry_connect_timeout_seconds = 10      # to open a connection to a registry (or its token server)
    registry_first_byte_timeout_seconds = 30   # a request sent to the head of its answer
    registry_read_timeout_seconds = 30         # between two reads of an answer's body: longer is a stall
    registry_retry_seconds = 60                # how long an outage, a 5xx/429 or a stall is waited out
    # registry_connect/read_timeout and registry_retry_seconds bound an S3 endpoint's calls too
    # (botocore has one read timeout, for the first byte as well)

    [containers]                               # every container forklift serve runs on runc
    pids_limit = 16384                         # processes and threads in one container (a fork bomb stops there)
    log_max_bytes = "64 MiB"                   # a container's log stream keeps its newest output, this much ...
    log_files = 4                              # ... across this many rotated files

    [server]                                   # forklift serve's HTTP edge
    max_connections_per_client = 256           # open connections from one source address
    max_connections = 15000                    # in all (default: RLIMIT_NOFILE less a quarter)
    request_head_timeout_seconds = 10          # first byte of a request to the end of its headers
    request_body_timeout_seconds = 60          # end of the headers to the end of the body (+1 s per 64 KiB declared)
    keep_alive_timeout_seconds = 5             # an idle connection between requests
    max_requests_in_flight = 64                # SageMaker/Logs calls answered at once (not InvokeEndpoint)
    request_queue_seconds = 5                  # the longest a call waits past those, then ThrottlingException
    max_requests_in_flight_per_caller = 16     # of those, one access key's (or address's); default a quarter
    s3_virtual_host_suffixes = ["s3.lan"]      # Host <bucket>.s3.lan is a virtual-host style S3 request
                                               # (so are <bucket>.localhost and <bucket>.<the name --host binds>)

    runtime = "runc"                           # or "kubernetes": where containers run (forklift serve)
    [kubernetes]                               # read by forklift.kube (forklift serve --runtime kubernetes)
    namespace = "forklift"                     # every object forklift creates goes here (default "default")
    kubeconfig = "~/.kube/config"              # default: in-cluster config in a pod, else kubectl's default
    context = "prod"                           # a context of that kubeconfig (default: its current one)
    volume_claim = "forklift-home"             # the ReadWriteMany PersistentVolumeClaim holding FORKLIFT_HOME
    volume_subpath = "forklift"                # where FORKLIFT_HOME lies inside that claim (default: its root)
    service_account = "forklift-workloads"     # the pods' service account (default: the namespace's default)
    image_pull_policy = "IfNotPresent"         # Always, IfNotPresent or Never
    gpu_resource = "nvidia.com/gpu"            # the extended resource a GPU is requested as
    service_domain = "svc.cluster.local"       # the cluster's DNS domain for Services
    secret_refresh_seconds = 21600             # pull Secrets renewed this often until the pod has pulled
    [kubernetes.node_selector]                 # labels a node must carry to run forklift's pods
    "node.kubernetes.io/instance-type" = "g5.xlarge"

Each package reads its own keys (control, inference, storage); the shape of the whole file is
checked here, once, whenever it is read: an unknown key or a value of the wrong kind is an error
naming the file, the key and the fix, before anything runs on a misread setting. `SCHEMA` is
that shape, with whether `forklift serve` must be restarted to see a change.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forklift.errors import ForkliftError

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"
# The largest common images (CUDA and framework images) hold a few hundred thousand entries; a
# million leaves room for those and still stops a layer of empty entries before it eats the inodes.
DEFAULT_MAX_IMAGE_FILES = 1_000_000


def forklift_home() -> Path:
    """`FORKLIFT_HOME`, default `~/.forklift`; created on first use."""
    home = Path(os.environ.get("FORKLIFT_HOME") or Path.home() / ".forklift").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


@dataclass(frozen=True)
class Settings:
    home: Path
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    insecure_registries: frozenset[str] = field(default_factory=frozenset)
    max_concurrent_downloads: int = 6
    max_concurrent_uploads: int = 5
    max_image_bytes: int | None = None  # None: the free disk of the rootfs directory less a reserve
    max_image_files: int = DEFAULT_MAX_IMAGE_FILES
    registry_connect_timeout_seconds: float = 10.0
    registry_first_byte_timeout_seconds: float = 30.0
    registry_read_timeout_seconds: float = 30.0
    registry_retry_seconds: float = 60.0

    @property
    def database_url(self) -> str:
        return os.environ.get("FORKLIFT_DATABASE_URL") or f"sqlite:///{self.home / 'forklift.db'}"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def tmp_dir(self) -> Path:
        """Scratch directories of this home's processes; what an ended process left here is swept."""
        return self.home / "tmp"

    @property
    def certs_dirs(self) -> list[Path]:
        """Per-registry CA directories, docker's `certs.d` layout, most specific first."""
        return [self.home / "certs.d", Path("/etc/docker/certs.d")]

    def is_insecure(self, registry: str) -> bool:
        return registry in self.insecure_registries


class ConfigError(ForkliftError, ValueError):
    """config.toml cannot be read or holds a wrong value."""


@dataclass(frozen=True)
class Key:
    """One config.toml key: what it holds, how to check a value (None when fine, else what to
    write instead), and whether a running server sees a change without a restart."""

    kind: str  # shown in messages: "a string", "a list of host[:port] strings", ...
    check: Callable[[Any], str | None]
    restart: bool = True


HOST_PORT = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?")


def _host_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return 'must be a list of host[:port] strings, e.g. ["localhost:5000"]'
    for item in value:
        if "://" in item:
            bare = item.split("://", 1)[1].rstrip("/")
            return f'"{item}" is a URL, and registries are named host[:port]: write "{bare}"'
        if not HOST_PORT.fullmatch(item):
            return f'"{item}" is not host[:port] (e.g. "registry.example.com:5000")'
    return None


def _plain(x: float) -> str:
    """1e8 as 100000000 (what a config file holds), 0.01 as 0.01."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _number(minimum: float, maximum: float, integer: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        # nan and inf are TOML floats too: neither makes a timeout, an interval or a size.
        if isinstance(value, bool) or not ok or not math.isfinite(value) or not minimum <= value <= maximum:
            return f"must be {'an integer' if integer else 'a number'} from {_plain(minimum)} to {_plain(maximum)}"
        return None
    return check


DAY = 86400.0

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_size(value: Any) -> int | None:
    """Bytes from an integer or a string such as "20 GiB", "500MB", "1.5TiB"; None when not a size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    size = int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])
    return size if size > 0 else None


def _size(value: Any) -> str | None:
    return None if parse_size(value) is not None else 'must be a size: bytes (an integer) or a string like "20 GiB"'


def _matching(pattern: str, what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and re.fullmatch(pattern, value) else f"must be {what}"
    return check


def _absolute_dirs(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return 'must be a list of absolute directory paths, e.g. ["/data"]'
    for item in value:
        if "://" in item:
            return f'"{item}" is a URI, and roots are directories: write "{item.split("://", 1)[1]}"'
        if not item.startswith("/") or "\0" in item:
            return f'"{item}" is not an absolute directory path (e.g. "/data")'
    return None


def _host_names(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return 'must be a list of host names, e.g. ["s3.forklift.internal"]'
    for item in value:
        if not re.fullmatch(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                            r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*", item):
            return f'"{item}" is not a host name (letters, digits, hyphens and dots, e.g. "s3.forklift.internal")'
    return None


def _path(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    return 'must be a file path such as "/etc/forklift/server.crt"'


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        quoted = [f'"{c}"' for c in choices]
        return f"must be {' or '.join(quoted)}" if len(quoted) == 2 else f"must be one of {', '.join(quoted)}"
    return check


# Kubernetes' own name rules (apimachinery's validation), for the [kubernetes] keys; forklift.kube.names
# holds the same rules for the objects it renders (tests/kube check that both agree).
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"  # and at most 253 characters
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_VALUE = rf"({_LABEL_NAME})?"
_DNS_RULE = 'lowercase letters, digits and "-", starting and ending with a letter or digit'


def _dns_label(example: str) -> Callable[[Any], str | None]:
    return _matching(_DNS_LABEL, f'a DNS-1123 label: at most 63 {_DNS_RULE}; e.g. "{example}"')


def _is_subdomain(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 253 and re.fullmatch(_DNS_SUBDOMAIN, value) is not None


def _dns_subdomain(example: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if _is_subdomain(value):
            return None
        return f'must be a DNS-1123 subdomain: at most 253 {_DNS_RULE}, dots between labels; e.g. "{example}"'
    return check


def _qualified_name(value: Any, *, prefix_required: bool) -> bool:
    """A label key or an extended resource name: `[DNS subdomain "/"] name`, the name at most 63."""
    if not isinstance(value, str):
        return False
    prefix, slash, name = value.rpartition("/")
    if slash and not _is_subdomain(prefix) or prefix_required and not slash:
        return False
    return re.fullmatch(_LABEL_NAME, name) is not None


def _gpu_resource(value: Any) -> str | None:
    if _qualified_name(value, prefix_required=True):
        return None
    return 'must be an extended resource name, domain/name, such as "nvidia.com/gpu" or "amd.com/gpu"'


def _relative_path(value: Any) -> str | None:
    if isinstance(value, str) and "\0" not in value and not value.startswith("/") \
            and ".." not in value.split("/") and len(value) <= 1024:
        return None
    return 'must be a relative path without ".." inside the volume, e.g. "forklift" ("" for its root)'


def _kubeconfig(value: Any) -> str | None:
    if isinstance(value, str) and value.strip() and "\0" not in value:
        return None
    return 'must be the path of a kubeconfig file, e.g. "~/.kube/config"'


def _context_name(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= 253 and value.isprintable():
        return None
    return 'must be the name of a context in the kubeconfig, e.g. "kind-forklift"'


def _node_selector(value: Any) -> str | None:
    if not isinstance(value, dict):
        return 'must be a table of node labels, e.g. {"node.kubernetes.io/instance-type" = "g5.xlarge"}'
    for name, label in value.items():
        if not _qualified_name(name, prefix_required=False):
            return (f'"{name}" is not a label key: an optional DNS subdomain and "/", then at most 63 letters, '
                    'digits, "-", "_" or ".", starting and ending with a letter or digit')
        if not isinstance(label, str) or not re.fullmatch(_LABEL_VALUE, label):
            return (f"{name} = {json.dumps(label)}: a label value is a string of at most 63 letters, digits, "
                    '"-", "_" or ".", starting and ending with a letter or digit')
    return None


def _http_url(value: Any) -> str | None:
    if isinstance(value, str) and (value == "" or re.fullmatch(r"https?://[^/\s]+(/\S*)?", value)):
        return None
    return 'must be an http(s):// URL such as "http://127.0.0.1:9000"'


SCHEMA: dict[str, Key | dict[str, Key]] = {
    "region": Key("a region name", _matching(r"[a-z0-9-]{1,32}", 'a region name such as "us-east-1"')),
    "account": Key("a 12-digit account id", _matching(r"\d{12}", 'a 12-digit account id such as "000000000000"')),
    "insecure_registries": Key("a list of host[:port] strings", _host_list),
    "max_concurrent_downloads": Key("an integer from 1 to 64", _number(1, 64, integer=True)),
    "max_concurrent_uploads": Key("an integer from 1 to 64", _number(1, 64, integer=True)),
    "max_image_bytes": Key('a size such as "20 GiB"', _size),
    "max_image_files": Key("an integer from 1 to 100000000", _number(1, 100_000_000, integer=True)),
    # How long forklift waits on a registry (forklift.registry.timeouts): predictable, never forever.
    "registry_connect_timeout_seconds": Key("a number of seconds", _number(0.01, 3600)),
    "registry_first_byte_timeout_seconds": Key("a number of seconds", _number(0.01, 3600)),
    "registry_read_timeout_seconds": Key("a number of seconds", _number(0.01, 3600)),
    "registry_retry_seconds": Key("a number of seconds", _number(0, DAY)),
    "platform_registries": Key("a list of host[:port] strings", _host_list),
    "stop_grace_seconds": Key("a number of seconds", _number(0, DAY)),
    "s3_endpoint_url": Key("an http(s):// URL", _http_url, restart=False),
    "tls_cert": Key("a PEM certificate file (HTTPS for forklift serve)", _path),
    "tls_key": Key("its unencrypted PEM private key file", _path),
    "ca_bundle": Key("a PEM CA file the CLI trusts for an https:// server", _path, restart=False),
    "file_roots": Key("a list of absolute directory paths", _absolute_dirs, restart=False),
    # Every container forklift serve runs on runc (forklift.control.settings).
    "containers": {"pids_limit": Key("an integer from 64 to 4194304", _number(64, 4_194_304, integer=True)),
                   "log_max_bytes": Key('a size such as "64 MiB"', _size),
                   "log_files": Key("an integer from 2 to 100", _number(2, 100, integer=True))},
    "capacity": {"cpus": Key("a number of CPUs", _number(0.01, 100_000)),
                 "memory_gib": Key("a number of GiB", _number(0.01, 1_000_000))},
    "inference": {"startup_health_check_timeout_seconds": Key("a number of seconds", _number(1, DAY)),
                  "health_check_interval_seconds": Key("a number of seconds", _number(0.01, 3600)),
                  "unhealthy_after_failed_pings": Key("an integer from 1 to 1000", _number(1, 1000, integer=True)),
                  "stop_grace_seconds": Key("a number of seconds", _number(0, DAY))},
    # The HTTP edge of `forklift serve` (forklift.api.edge): what one client may hold of it.
    "server": {"max_connections": Key("an integer from 16 to 1000000", _number(16, 1_000_000, integer=True)),
               "max_connections_per_client": Key("an integer from 1 to 1000000", _number(1, 1_000_000, integer=True)),
               "request_head_timeout_seconds": Key("a number of seconds", _number(0.01, 3600)),
               "request_body_timeout_seconds": Key("a number of seconds", _number(0.01, DAY)),
               "keep_alive_timeout_seconds": Key("a number of seconds", _number(0.01, 3600)),
               "max_requests_in_flight": Key("an integer from 1 to 100000", _number(1, 100_000, integer=True)),
               "request_queue_seconds": Key("a number of seconds", _number(0, 3600)),
               "max_requests_in_flight_per_caller": Key("an integer from 1 to 100000",
                                                        _number(1, 100_000, integer=True)),
               "s3_virtual_host_suffixes": Key("a list of host names", _host_names)},
    # Where forklift serve runs containers; "kubernetes" reads the [kubernetes] table (forklift.kube.settings).
    "runtime": Key('"runc" or "kubernetes"', _one_of("runc", "kubernetes")),
    "kubernetes": {
        "namespace": Key("a namespace name", _dns_label("forklift")),
        "kubeconfig": Key("a kubeconfig file", _kubeconfig),
        "context": Key("a context of the kubeconfig", _context_name),
        "volume_claim": Key("a ReadWriteMany PersistentVolumeClaim's name", _dns_subdomain("forklift-home")),
        "volume_subpath": Key("a relative path inside the claim", _relative_path),
        "service_account": Key("a service account's name", _dns_subdomain("forklift-workloads")),
        "image_pull_policy": Key('"Always", "IfNotPresent" or "Never"', _one_of("Always", "IfNotPresent", "Never")),
        "gpu_resource": Key("an extended resource name", _gpu_resource),
        "node_selector": Key("a table of node labels", _node_selector),
        "service_domain": Key("the cluster's DNS domain", _dns_subdomain("svc.cluster.local")),
        # How often a pull Secret is renewed while its pod waits to pull (an ECR token lasts 12 h).
        "secret_refresh_seconds": Key("a number of seconds", _number(60, DAY)),
    },
}


def _did_you_mean(name: str, known, prefix: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean {prefix}{close[0]}?"
    return f"known keys: {', '.join(prefix + k for k in sorted(known))}"


def config_problems(data: dict, schema: dict = SCHEMA, prefix: str = "") -> list[str]:
    """Every unknown key and bad value in a parsed config.toml, each with its fix."""
    problems = []
    for name, value in data.items():
        key = f"{prefix}{name}"
        spec = schema.get(name)
        if spec is None:
            problems.append(f"unknown key {key}: {_did_you_mean(name, schema, prefix)}")
        elif isinstance(spec, dict):
            if not isinstance(value, dict):
                problems.append(f"{key} must be a table ([{key}] with keys {', '.join(spec)})")
            else:
                problems += config_problems(value, spec, f"{key}.")
        elif (fix := spec.check(value)) is not None:
            problems.append(f"{key} = {json.dumps(value, default=str)}: {fix}")
    return problems


def read_config_file(home: Path, *, check: bool = True) -> tuple[Path, dict]:
    """`$FORKLIFT_HOME/config.toml` parsed and checked (empty when absent). Each package reads its
    own keys from it. `check=False` is for a key read again at each use by a running server: a typo
    elsewhere in the file, made since the server started, must not break what already runs (the
    reader checks its own key)."""
    path = home / "config.toml"
    if not path.exists():
        return path, {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    problems = config_problems(data) if check else []
    if len(problems) == 1:
        raise ConfigError(f"{path}: {problems[0]}")
    if problems:
        raise ConfigError(f"{path} has {len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems))
    return path, data


def load_settings(home: Path | None = None) -> Settings:
    home = home or forklift_home()
    path, data = read_config_file(home)
    insecure = data.get("insecure_registries", [])
    if not isinstance(insecure, list) or not all(isinstance(h, str) for h in insecure):
        raise ConfigError(f"{path}: insecure_registries must be a list of host[:port] strings")
    return Settings(
        home=home,
        region=str(data.get("region", DEFAULT_REGION)),
        account=str(data.get("account", DEFAULT_ACCOUNT)),
        insecure_registries=frozenset(insecure),
        max_concurrent_downloads=int(data.get("max_concurrent_downloads", 6)),
        max_concurrent_uploads=int(data.get("max_concurrent_uploads", 5)),
        max_image_bytes=parse_size(data["max_image_bytes"]) if "max_image_bytes" in data else None,
        max_image_files=int(data.get("max_image_files", DEFAULT_MAX_IMAGE_FILES)),
        registry_connect_timeout_seconds=float(data.get("registry_connect_timeout_seconds", 10)),
        registry_first_byte_timeout_seconds=float(data.get("registry_first_byte_timeout_seconds", 30)),
        registry_read_timeout_seconds=float(data.get("registry_read_timeout_seconds", 30)),
        registry_retry_seconds=float(data.get("registry_retry_seconds", 60)),
    )

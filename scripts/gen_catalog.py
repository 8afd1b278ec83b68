#!/usr/bin/env python3
"""Generate forklift's image catalog (src/forklift/data/catalog.json) from the SageMaker SDK's data.

Input: the ``image_uri_config/*.json`` files shipped in the installed ``sagemaker-core``
(sagemaker >= 3) or ``sagemaker`` (2.x) wheel, plus the ECR host name of every region they
mention, taken from botocore's endpoint data (the same source the SDK asks at run time).
Both are Apache-2.0; the attribution goes to src/forklift/data/CATALOG_NOTICE.

The output is one compact JSON document that forklift.catalog reads at run time, already
normalised so the run-time code does no version arithmetic (the schema is described in
forklift/catalog.py). The same input always produces byte-identical output.

    .venv/bin/python scripts/gen_catalog.py            # (re)write the data files
    .venv/bin/python scripts/gen_catalog.py --check    # exit 1 if the data is out of date
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import re
import sys
import textwrap
from pathlib import Path

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "src" / "forklift" / "data"
FORMAT = 1

# Built-in algorithms whose only version is this get ':latest' on request (with a warning).
BUILTIN_VERSION = "1"
# XGBoost must be pinned to a real container version: the legacy ':1' image and the
# 'latest' alias pointing at it are left out of the catalog.
PINNED_ONLY = {"xgboost": {"1", "latest"}}
# Frameworks whose image tag leaves the Python version out when none is asked for.
PY_OPTIONAL = {"spark"}
# Frameworks that default to the training images when no scope is asked for.
TRAINING_BY_DEFAULT = {"xgboost", "sklearn"}
# Graviton (arm64) inference images of XGBoost and scikit-learn carry a fixed tag per version
# (facts about published images, not expressible in the JSON configs).
ARM64_TAGS = {
    "xgboost": {"1.5-1": "1.5-1-arm64", "1.3-1": "1.3-1-arm64"},
    "sklearn": {"1.0-1": "1.0-1-arm64-cpu-py3"},
}
GRAVITON_SCOPE = "inference_graviton"
# Neuron images prefix their container version with the newest Neuron SDK version.
NEURON_SDK_REPOS = {"pytorch-training-neuron", "pytorch-training-neuronx", "huggingface-vllm-inference-neuronx"}
# Triton's GPU images have no processor token in their tag (only the CPU ones do).
TAG_WITHOUT_PROCESSOR = {"sagemaker-tritonserver": ["gpu"]}
PY_KEY = re.compile(r"^py\d+$")


def locate_source() -> tuple[Path, str]:
    """Return (image_uri_config directory, name of the distribution that ships it)."""
    for module, dist in (("sagemaker.core", "sagemaker-core"), ("sagemaker", "sagemaker")):
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            continue
        for location in (spec and spec.submodule_search_locations) or []:
            candidate = Path(location) / "image_uri_config"
            if candidate.is_dir():
                return candidate, dist
    sys.exit("gen_catalog: install the SageMaker SDK first (.venv/bin/pip install sagemaker)")


def version_key(text: str):
    try:
        return (0, Version(text), text)
    except InvalidVersion:
        return (1, Version("0"), text)


def pick_newer(first: str, last: str) -> str | None:
    """The newer of the first and last listed versions, the SDK's notion of "latest".

    Versions written as "N.x" compare by their major number. Anything that cannot be
    compared gives None (the SDK then refuses to pick a default).
    """
    try:
        if first.endswith(".x") or last.endswith(".x"):
            return f"{max(int(first[:-2]), int(last[:-2]))}.x"
        return first if Version(first) >= Version(last) else last
    except (ValueError, InvalidVersion):
        return None


def default_for_flat(config: dict) -> str | None:
    keys = list(config["versions"])
    if len(keys) == 1:
        return keys[0]
    if "latest" in (keys[0], keys[-1]):
        return None
    return pick_newer(keys[0], keys[-1])


def default_for_scope(config: dict, scope: str | None) -> str | None:
    """Default version of a per-scope config when the caller named ``scope`` (or None)."""
    if scope is not None and scope in config:
        latest = config[scope].get("version_aliases", {}).get("latest")
        if latest:
            return latest
    if scope is not None and scope in config:
        keys = list(config[scope]["versions"])
    elif "processing" in config:
        keys = list(config["processing"]["versions"])
    else:
        return None
    return pick_newer(keys[0], keys[-1]) if keys else None


class Registries:
    """Deduplicated region -> account maps, referred to by index."""

    def __init__(self) -> None:
        self.maps: list[dict] = []
        self.index: dict[str, int] = {}

    def ref(self, mapping: dict) -> int:
        key = json.dumps(mapping, sort_keys=True)
        if key not in self.index:
            self.index[key] = len(self.maps)
            self.maps.append(dict(sorted(mapping.items())))
        return self.index[key]

    def renumbered(self) -> tuple[list[dict], dict[int, int]]:
        order = sorted(range(len(self.maps)), key=lambda i: json.dumps(self.maps[i], sort_keys=True))
        return [self.maps[i] for i in order], {old: new for new, old in enumerate(order)}


def leaf(name: str, scope: str | None, version: str, raw: dict, processors, registries: Registries) -> dict | None:
    """Normalise one image config (a version, or one Python version of it)."""
    repo = raw["repository"]
    out: dict = {"repo": repo, "reg": registries.ref(raw["registries"])}
    procs = processors or raw.get("processors")
    if procs:
        out["proc"] = list(procs)
    if raw.get("py_versions"):
        out["py"] = list(raw["py_versions"])
    if "tag_prefix" in raw:
        out["prefix"] = raw["tag_prefix"]
    container = dict(raw.get("container_version") or {})
    if repo in NEURON_SDK_REPOS:
        sdk = sorted(raw["sdk_versions"], reverse=True)[0]
        container = {proc: f"{sdk}-{suffix}" for proc, suffix in container.items()}
        if not container:
            raise SystemExit(f"gen_catalog: {name} {version}: Neuron image without container_version")
    if repo in (f"{name}-inference-graviton", f"{name}-inference-arm64"):
        if not container:
            raise SystemExit(f"gen_catalog: {name} {version}: arm64 image without container_version")
        container = {proc: f"{suffix}-sagemaker" for proc, suffix in container.items()}
    if container:
        out["cv"] = container
    if raw.get("processor_in_tag", True) is False:
        out["hide"] = list(procs or [])
    elif name in TAG_WITHOUT_PROCESSOR:
        # The SDK strips the characters of "-gpu" from the end of the tag, which only equals
        # leaving the processor out when it is the last token and the prefix ends in another character.
        prefix = out.get("prefix")
        if not prefix or out.get("py") or container or prefix.rstrip("-gpu") != prefix:
            raise SystemExit(f"gen_catalog: {name} {version}: unexpected tag shape; update TAG_WITHOUT_PROCESSOR")
        out["hide"] = TAG_WITHOUT_PROCESSOR[name]
    if scope == GRAVITON_SCOPE and name in ARM64_TAGS:
        if version not in ARM64_TAGS[name]:
            return None  # no published arm64 tag known: the image cannot be addressed
        out["tag"] = ARM64_TAGS[name][version]
    return out


def scope_config(name: str, scope: str | None, raw: dict, registries: Registries) -> dict:
    versions = {}
    drop = PINNED_ONLY.get(name, set())
    for version, vraw in raw["versions"].items():
        if version in drop:
            continue
        if "repository" in vraw:
            entry = leaf(name, scope, version, vraw, raw.get("processors"), registries)
        else:
            entry = {"bypy": {py: leaf(name, scope, version, sub, raw.get("processors"), registries)
                              for py, sub in vraw.items()}}
            if None in entry["bypy"].values():
                entry = None
        if entry is not None:
            versions[version] = entry
    out: dict = {"versions": versions}
    aliases = {a: t for a, t in raw.get("version_aliases", {}).items() if a not in drop and t not in drop}
    if aliases:
        out["aliases"] = aliases
    return out


def algorithm(name: str, raw: dict, registries: Registries) -> dict | None:
    if "versions" in raw:  # one config shared by every scope
        scopes = raw.get("scope")
        if not scopes:
            return None  # no scope list: not meant for retrieve() (e.g. sagemaker-base-python)
        raw_scopes = {"*": raw}
    else:
        scopes = list(raw)
        raw_scopes = {s: c for s, c in raw.items() if isinstance(c, dict) and "versions" in c}
        if not raw_scopes:
            return None  # not an image config (e.g. instance_gpu_info)
    for config in raw_scopes.values():
        for vraw in config["versions"].values():
            if "repository" not in vraw and not all(PY_KEY.match(k) for k in vraw):
                return None  # needs a base framework version (huggingface*): out of scope
    configs = {s: scope_config(name, None if s == "*" else s, c, registries) for s, c in raw_scopes.items()}
    out: dict = {"scopes": scopes, "configs": configs}
    if name in TRAINING_BY_DEFAULT:
        out["default_scope"] = "training"
    elif len(scopes) == 1:
        out["default_scope"] = scopes[0]
    elif "*" in configs and set(scopes) == {"training", "inference"}:
        out["default_scope"] = scopes[0]
    if "*" in configs:
        out["default_version"] = default_for_flat(raw)
    else:
        out["default_version"] = default_for_scope(raw, None)
        for scope, config in configs.items():
            config["default"] = default_for_scope(raw, scope)
    if name in PINNED_ONLY:
        out["pinned"] = True
        out["default_version"] = None
        for config in configs.values():
            config.pop("default", None)
    if all(list(c["versions"]) == [BUILTIN_VERSION] and not c.get("aliases") for c in configs.values()):
        out["builtin"] = True
    if name in PY_OPTIONAL:
        out["py_optional"] = True
    return out


def ecr_hosts(regions: set[str]) -> dict[str, str]:
    import botocore.loaders
    import botocore.regions

    resolver = botocore.regions.EndpointResolver(botocore.loaders.create_loader().load_data("endpoints"))
    hosts = {}
    for region in sorted(regions):
        endpoint = resolver.construct_endpoint("ecr", region)
        if not endpoint and region == "il-central-1":  # the SDK's own fallback for this region
            endpoint = {"hostname": f"ecr.{region}.amazonaws.com"}
        if not endpoint:
            raise SystemExit(f"gen_catalog: botocore knows no ECR endpoint for {region}")
        hosts[region] = endpoint["hostname"]
    return hosts


def renumber(node, mapping: dict[int, int]):
    if isinstance(node, dict):
        return {k: (mapping[v] if k == "reg" else renumber(v, mapping)) for k, v in node.items()}
    return node


def build() -> tuple[str, str]:
    source_dir, dist = locate_source()
    registries = Registries()
    algorithms, skipped = {}, []
    for path in sorted(source_dir.glob("*.json")):
        entry = algorithm(path.stem, json.loads(path.read_text()), registries)
        if entry is None:
            skipped.append(path.stem)
        else:
            algorithms[path.stem] = entry
    maps, mapping = registries.renumbered()
    algorithms = renumber(algorithms, mapping)
    versions = {d: importlib.metadata.version(d) for d in (dist, "botocore")}
    try:
        sdk = importlib.metadata.version("sagemaker")
    except importlib.metadata.PackageNotFoundError:
        sdk = None
    doc = {
        "format": FORMAT,
        "source": {"package": dist, "version": versions[dist], "sagemaker": sdk, "license": "Apache-2.0",
                   "hosts": f"botocore {versions['botocore']} endpoints data", "skipped": skipped},
        "hosts": ecr_hosts({region for m in maps for region in m}),
        "registries": maps,
        "algorithms": algorithms,
    }
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"
    return data, notice(dist, versions[dist], sdk, versions["botocore"], skipped)


def notice(dist: str, version: str, sdk: str | None, botocore: str, skipped: list[str]) -> str:
    via = f" (installed with sagemaker {sdk})" if sdk and dist != "sagemaker" else ""
    return f"""forklift image catalog (catalog.json)
=====================================

catalog.json is derived from the image URI configuration files (image_uri_config/*.json)
of the Python package "{dist}" version {version}{via},
part of the Amazon SageMaker Python SDK:

    Amazon SageMaker Python SDK
    Copyright Amazon.com, Inc. or its affiliates. All Rights Reserved.
    https://github.com/aws/sagemaker-python-sdk

The ECR host names per region are derived from the endpoint data of the Python package
"botocore" version {botocore}:

    Botocore
    Copyright 2012-2022 Amazon.com, Inc. or its affiliates. All Rights Reserved.
    https://github.com/boto/botocore

Both are licensed under the Apache License, Version 2.0 (the "License"); you may not use
these files except in compliance with the License. You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software distributed under the
License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND,
either express or implied. See the License for the specific language governing permissions
and limitations under the License.

Modifications: the data was reorganised by scripts/gen_catalog.py (fields not needed to
build image URIs removed, registry maps deduplicated, defaults precomputed); the legacy
XGBoost ':1' image and its 'latest' alias were left out; files that are not image configs
or whose images need more than scope, version, processor and Python version to address
were not included:
{textwrap.fill(", ".join(sorted(skipped)) + ".", width=90, initial_indent="    ", subsequent_indent="    ")}
"""


# Members of "source" that only record which tool versions produced the data: a newer botocore or
# SDK release that yields the same data must not make the catalog count as stale.
VERSION_STAMPS = ("version", "sagemaker", "hosts")


def without_version_stamps(doc: dict) -> dict:
    source = {k: v for k, v in doc["source"].items() if k not in VERSION_STAMPS}
    return {**doc, "source": source}


def differences(recorded: dict, fresh: dict) -> list[str]:
    """Names of what differs between two catalog documents, version stamps left out."""
    recorded, fresh = without_version_stamps(recorded), without_version_stamps(fresh)
    names = []
    for key in sorted(set(recorded) | set(fresh)):
        if key == "algorithms":
            old, new = recorded.get(key, {}), fresh.get(key, {})
            names += [f"algorithms.{a}" for a in sorted(set(old) | set(new)) if old.get(a) != new.get(a)]
        elif recorded.get(key) != fresh.get(key):
            names.append(key)
    return names


def check(data_dir: Path, data: str) -> list[str]:
    """What is out of date in `data_dir` against freshly built `data`: the catalog's data, and a
    notice that does not match the versions the recorded catalog names."""
    catalog_path, notice_path = data_dir / "catalog.json", data_dir / "CATALOG_NOTICE"
    if not catalog_path.exists() or not notice_path.exists():
        return [f"{catalog_path.name} and {notice_path.name} must both exist"]
    recorded = json.loads(catalog_path.read_text())
    stale = differences(recorded, json.loads(data))
    source = recorded["source"]
    expected_notice = notice(source["package"], source["version"], source["sagemaker"],
                             source["hosts"].split()[1], source["skipped"])
    if notice_path.read_text() != expected_notice:
        stale.append(f"{notice_path.name} (does not match the versions catalog.json records)")
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="fail if the catalog's data is out of date "
                             "(the tool versions it records are not compared)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where catalog.json and CATALOG_NOTICE live")
    args = parser.parse_args()
    data, text = build()
    if args.check:
        stale = check(args.data_dir, data)
        if stale:
            print("gen_catalog: out of date: " + ", ".join(stale), file=sys.stderr)
            return 1
        return 0
    args.data_dir.mkdir(parents=True, exist_ok=True)
    (args.data_dir / "catalog.json").write_text(data)
    (args.data_dir / "CATALOG_NOTICE").write_text(text)
    doc = json.loads(data)
    print(f"wrote {args.data_dir / 'catalog.json'} ({len(data.encode())} bytes, {len(doc['algorithms'])} algorithms; "
          f"skipped: {', '.join(doc['source']['skipped'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

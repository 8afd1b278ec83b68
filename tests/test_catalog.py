"""forklift.catalog and `forklift catalog`: equal to SageMaker's image_uris.retrieve over the whole data set."""

from __future__ import annotations

import collections
import functools
import importlib.util
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from forklift import catalog
from forklift.catalog import CatalogError, CatalogWarning, describe, image_uri, list_algorithms
from forklift.cli.catalog import catalog as catalog_group

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "forklift" / "data"
BUILTIN = ["blazingtext", "factorization-machines", "forecasting-deepar", "image-classification", "ipinsights",
           "kmeans", "knn", "lda", "linear-learner", "ntm", "object-detection", "object2vec", "pca",
           "randomcutforest", "semantic-segmentation", "seq2seq"]
# retrieve() takes an instance type, not a processor: a representative instance of each.
INSTANCE = {"cpu": "ml.c5.xlarge", "gpu": "ml.p3.2xlarge", "inf": "ml.inf1.xlarge", "inf2": "ml.inf2.xlarge"}
GRAVITON_INSTANCE = "ml.c7g.xlarge"


def data() -> dict:
    return json.loads((DATA / "catalog.json").read_text())


@pytest.fixture(scope="module")
def sm():
    """SageMaker's image_uris module, with its per-call file loading cached so that the
    whole data set can be compared in seconds (retrieve re-reads a JSON file and botocore's
    endpoint data on every call; neither is modified by it, which the fixture checks)."""
    try:
        from sagemaker.core import image_uris
    except ImportError:
        image_uris = pytest.importorskip("sagemaker.image_uris")
    uncached = image_uris.config_for_framework
    cached = functools.lru_cache(maxsize=None)(uncached)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(image_uris, "config_for_framework", cached)
        mp.setattr(image_uris.utils, "_botocore_resolver",
                   functools.lru_cache(maxsize=None)(image_uris.utils._botocore_resolver))
        yield image_uris
    for name in list_algorithms():
        assert cached(name) == uncached(name), f"retrieve() modified the config of {name}"


def retrieve_fn(sm):
    # Skip the pipeline-variable decorator (it only matters for pipeline variables) for speed.
    return getattr(sm.retrieve, "__wrapped__", sm.retrieve)


def instance_for(processor: str | None, scope: str | None, processors: list[str]) -> str | None:
    if processor is None:
        return None
    if scope == "inference_graviton":
        return GRAVITON_INSTANCE
    if processor not in INSTANCE:
        # trn / neuronx: retrieve maps no instance type to these outside its pytorch->neuron path;
        # they only occur as an image's single processor, which retrieve picks by default.
        assert processors == [processor], (processor, processors)
        return None
    return INSTANCE[processor]


def cases(name: str, algo: dict, registries: list[dict]):
    """Every (scope, version, py_version, processor) request the data holds for ``name``, with
    the image's regions; None stands for "not given" and is included in every dimension."""
    for scope in [None, *algo["scopes"]]:
        config = algo["configs"].get(scope) or algo["configs"].get("*")
        if config is None:  # no scope given and no default: must fail
            yield scope, None, None, None, [], ["us-east-1"]
            continue
        aliases = config.get("aliases", {})
        versions = [*config["versions"], *aliases] + ([] if algo.get("pinned") else [None])
        for version in versions:
            target = aliases.get(version, version)
            images = [config["versions"][target]] if target in config["versions"] else list(config["versions"].values())
            leaves, py_versions = [], set()
            for image in images:
                if "bypy" in image:
                    leaves += image["bypy"].values()
                    py_versions |= set(image["bypy"])
                else:
                    leaves.append(image)
                    py_versions |= set(image.get("py", []))
            processors = sorted({p for leaf in leaves for p in leaf.get("proc", [])})
            regions = sorted({r for leaf in leaves for r in registries[leaf["reg"]]})
            for py_version in [None, *sorted(py_versions)]:
                for processor in [None, *processors]:
                    yield scope, version, py_version, processor, processors, regions


def test_equal_to_sagemaker_retrieve_for_whole_data_set(sm):
    retrieve = retrieve_fn(sm)
    doc = data()
    total, mismatches = 0, []
    sagemaker_logger = logging.getLogger("sagemaker")
    level = sagemaker_logger.level
    sagemaker_logger.setLevel(logging.ERROR)

    def compare(name, region, scope, version, py_version, processor, processors) -> bool:
        nonlocal total
        total += 1
        try:
            expected, expected_error = retrieve(name, region, version=version, py_version=py_version, image_scope=scope,
                                                instance_type=instance_for(processor, scope, processors)), None
        except Exception as exc:  # noqa: BLE001 - any failure of retrieve() counts as "raises"
            expected, expected_error = None, exc
        try:
            got, error = image_uri(name, region, version=version, scope=scope, processor=processor,
                                   py_version=py_version), None
        except CatalogError as exc:
            got, error = None, exc
        if expected_error is not None and error is not None:
            return False
        if expected_error is None and got == expected:
            return True
        mismatches.append(f"{name} region={region} scope={scope} version={version} py={py_version} "
                          f"processor={processor}: sagemaker={expected or repr(expected_error)} "
                          f"forklift={got or error}")
        return False

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, algo in doc["algorithms"].items():
                for scope, version, py_version, processor, processors, regions in cases(name, algo, doc["registries"]):
                    args = (scope, version, py_version, processor, processors)
                    if compare(name, regions[0], *args):
                        rest = regions[1:]
                    else:  # both raise (or mismatch): one more region is enough
                        rest = regions[1:2]
                    for region in rest:
                        compare(name, region, *args)
    finally:
        sagemaker_logger.setLevel(level)
    print(f"compared {total} requests")
    assert total > 50_000
    by_algorithm = collections.Counter(line.split(" ", 1)[0] for line in mismatches)
    assert not mismatches, (f"{len(mismatches)} of {total} requests differ ({dict(by_algorithm)}):\n"
                            + "\n".join(mismatches[:40]))


def test_data_is_current_and_deterministic():
    if not (_has("sagemaker.core") or _has("sagemaker.image_uris")):
        pytest.skip("the sagemaker package (test dependency) is not installed")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_catalog.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + "\nrun scripts/gen_catalog.py to regenerate"


def _check_catalog(data_dir) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_catalog.py"), "--check",
                           "--data-dir", str(data_dir)], capture_output=True, text=True)


def test_freshness_check_compares_data_not_tool_versions(tmp_path):
    """A botocore or SDK release that yields the same data leaves the catalog current; a change
    to the data itself does not, and the check names what changed."""
    if not (_has("sagemaker.core") or _has("sagemaker.image_uris")):
        pytest.skip("the sagemaker package (test dependency) is not installed")
    doc = data()
    source = doc["source"]
    notice = (DATA / "CATALOG_NOTICE").read_text()
    recorded = (source["version"], source["sagemaker"], source["hosts"].split()[1])
    source.update(version="0.0.1", sagemaker="0.0.2", hosts="botocore 0.0.3 endpoints data")
    (tmp_path / "catalog.json").write_text(json.dumps(doc))
    (tmp_path / "CATALOG_NOTICE").write_text(notice.replace(f"version {recorded[0]}", "version 0.0.1")
                                             .replace(f"sagemaker {recorded[1]}", "sagemaker 0.0.2")
                                             .replace(f"version {recorded[2]}", "version 0.0.3"))
    result = _check_catalog(tmp_path)
    assert result.returncode == 0, result.stderr

    (tmp_path / "CATALOG_NOTICE").write_text(notice)
    result = _check_catalog(tmp_path)
    assert result.returncode == 1 and "CATALOG_NOTICE" in result.stderr

    doc["algorithms"]["kmeans"]["configs"] = {}
    (tmp_path / "catalog.json").write_text(json.dumps(doc))
    result = _check_catalog(tmp_path)
    assert result.returncode == 1 and "algorithms.kmeans" in result.stderr


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def test_data_file_is_compact_and_attributed():
    raw = (DATA / "catalog.json").read_bytes()
    assert len(raw) < 300_000 and b"\n " not in raw
    doc = json.loads(raw)
    notice = (DATA / "CATALOG_NOTICE").read_text()
    assert doc["source"]["package"] in notice and doc["source"]["version"] in notice
    assert "Apache License, Version 2.0" in notice and "botocore" in notice
    assert catalog.source()["license"] == "Apache-2.0"


def test_product_code_does_not_import_sagemaker():
    code = ("import sys, forklift.catalog; forklift.catalog.image_uri('kmeans', 'us-east-1'); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sagemaker', 'botocore', 'boto3')); "
            "assert not bad, bad; import forklift.cli.catalog; "
            "assert not [m for m in sys.modules if m.split('.')[0] == 'sagemaker']")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_algorithms_default_to_tag_1(sm, name):
    assert describe(name)["builtin"]
    for scope in (None, "training", "inference"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", CatalogWarning)
            uri = image_uri(name, "us-west-2", scope=scope)
        assert uri.endswith(":1")
        assert uri == retrieve_fn(sm)(name, "us-west-2", image_scope=scope)


def test_builtin_set_is_what_the_data_marks():
    assert sorted(n for n in list_algorithms() if describe(n)["builtin"]) == BUILTIN


@pytest.mark.parametrize("name", ["linear-learner", "kmeans", "object-detection"])
def test_latest_only_on_request_with_warning(name):
    with pytest.warns(CatalogWarning, match="backward compatibility"):
        uri = image_uri(name, "eu-west-1", version="latest")
    assert uri == image_uri(name, "eu-west-1").rsplit(":", 1)[0] + ":latest"


def test_latest_is_not_offered_for_frameworks_without_it():
    with pytest.raises(CatalogError, match="Supported versions: .*2.0.0"):
        image_uri("pytorch", "us-east-1", scope="training", version="latest", processor="cpu", py_version="py3")


@pytest.mark.parametrize("version", [None, "latest", "1"])
def test_xgboost_needs_an_explicit_version(version):
    with pytest.raises(CatalogError) as info:
        image_uri("xgboost", "us-east-1", version=version)
    message = str(info.value)
    assert "explicit version" in message
    for supported in ("0.90-1", "1.5-1", "1.7-1"):
        assert supported in message
    assert "Supported versions: 1," not in message and ", 1," not in message


def test_xgboost_pinned_versions(sm):
    expected = retrieve_fn(sm)("xgboost", "us-east-1", version="1.7-1")
    assert image_uri("xgboost", "us-east-1", version="1.7-1") == expected
    assert expected == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    assert image_uri("xgboost", "us-east-1", version="1.5-1", scope="inference_graviton").endswith(":1.5-1-arm64")
    assert "1" not in describe("xgboost")["versions"]


def test_unknown_algorithm_lists_known_ones():
    with pytest.raises(CatalogError) as info:
        image_uri("k-means", "us-east-1")
    message = str(info.value)
    assert "Unknown algorithm 'k-means'" in message and "Did you mean: kmeans" in message
    assert all(name in message for name in list_algorithms())
    with pytest.raises(ValueError):  # CatalogError is a ValueError
        describe("nope")


def test_unknown_region_lists_known_ones():
    with pytest.raises(CatalogError) as info:
        image_uri("kmeans", "mars-north-1")
    assert "Unknown region 'mars-north-1'" in str(info.value)
    assert "us-east-1" in str(info.value) and "cn-north-1" in str(info.value)
    # A real region the image is not published in: the message lists the image's regions.
    regions = describe("sagemaker-distribution")["regions"]
    missing = sorted(set(data()["hosts"]) - set(regions))[0]
    with pytest.raises(CatalogError, match="not available in region") as info:
        image_uri("sagemaker-distribution", missing, processor="cpu")
    assert ", ".join(regions) in str(info.value)


def test_other_errors_list_the_choices():
    with pytest.raises(CatalogError,
                       match="needs a scope. Supported scopes: eia, inference, inference_graviton, training"):
        image_uri("pytorch", "us-east-1")
    with pytest.raises(CatalogError, match="needs a processor. Supported processors: cpu, gpu"):
        image_uri("pytorch", "us-east-1", scope="training", version="2.3.0", py_version="py311")
    with pytest.raises(CatalogError, match="Supported Python versions: py311"):
        image_uri("pytorch", "us-east-1", scope="training", version="2.3.0", processor="gpu", py_version="py27")
    with pytest.raises(CatalogError, match="Unsupported scope 'serving'"):
        image_uri("pytorch", "us-east-1", scope="serving")


@pytest.mark.parametrize("region, host", [
    ("cn-north-1", "ecr.cn-north-1.amazonaws.com.cn"),
    ("cn-northwest-1", "ecr.cn-northwest-1.amazonaws.com.cn"),
    ("us-gov-west-1", "ecr.us-gov-west-1.amazonaws.com"),
    ("us-gov-east-1", "ecr.us-gov-east-1.amazonaws.com"),
    ("us-iso-east-1", "ecr.us-iso-east-1.c2s.ic.gov"),
    ("us-isob-east-1", "ecr.us-isob-east-1.sc2s.sgov.gov"),
])
def test_partition_host_suffixes(sm, region, host):
    uri = image_uri("linear-learner", region)
    assert uri.split("/", 1)[0].split(".dkr.", 1)[1] == host
    assert uri == retrieve_fn(sm)("linear-learner", region)


def test_mirror_rewrites_host_only():
    plain = image_uri("pytorch", "cn-north-1", scope="inference", version="2.1", processor="gpu", py_version="py310")
    repo_and_tag = plain.split("/", 1)[1]
    assert repo_and_tag == "pytorch-inference:2.1-gpu-py310"
    for mirror, host in [("localhost:5000", "localhost:5000"), ("http://mirror.lan:5000/", "mirror.lan:5000"),
                         ("registry.lan/sagemaker", "registry.lan/sagemaker")]:
        assert image_uri("pytorch", "cn-north-1", scope="inference", version="2.1", processor="gpu",
                         py_version="py310", mirror=mirror) == f"{host}/{repo_and_tag}"
    with pytest.warns(CatalogWarning):
        assert (image_uri("kmeans", "us-east-1", version="latest", mirror="localhost:5000")
                == "localhost:5000/kmeans:latest")
    with pytest.raises(CatalogError, match="Invalid mirror"):
        image_uri("kmeans", "us-east-1", mirror="http:// ")


def test_describe_and_list():
    names = list_algorithms()
    assert names == sorted(names) and {"kmeans", "xgboost", "pytorch", "tensorflow"} <= set(names)
    info = describe("pytorch")
    assert {"training", "inference"} <= set(info["scopes"]) and {"cpu", "gpu"} <= set(info["processors"])
    assert "2.0.0" in info["versions"] and "2.0" in info["aliases"] and "us-east-1" in info["regions"]
    assert info["versions"].index("1.9.0") < info["versions"].index("1.10.0")
    assert all(row["repositories"] for row in info["images"])


# --- CLI -----------------------------------------------------------------------------------

def invoke(*args: str):
    return CliRunner().invoke(catalog_group, list(args))


def test_cli_image_uri():
    result = invoke("image-uri", "kmeans", "--region", "cn-north-1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/kmeans:1\n"
    assert result.stderr == ""
    result = invoke("image-uri", "pytorch", "--region", "us-east-1", "--scope", "training", "--version", "2.0",
                    "--processor", "gpu", "--py-version", "py310", "--mirror", "localhost:5000")
    assert result.exit_code == 0, result.output
    assert result.stdout == "localhost:5000/pytorch-training:2.0-gpu-py310\n"


def test_cli_latest_warns_on_stderr():
    result = invoke("image-uri", "linear-learner", "--region", "us-gov-west-1", "--version", "latest")
    assert result.exit_code == 0
    assert result.stdout.strip().endswith(".amazonaws.com/linear-learner:latest")
    assert "Warning:" in result.stderr and "backward compatibility" in result.stderr


def test_cli_errors():
    result = invoke("image-uri", "xgboost", "--region", "us-east-1")
    assert result.exit_code == 1 and result.stdout == ""
    assert "explicit version" in result.stderr and "1.7-1" in result.stderr
    result = invoke("image-uri", "kmeans", "--region", "nowhere-1")
    assert result.exit_code == 1 and "Unknown region 'nowhere-1'" in result.stderr
    result = invoke("image-uri", "kmeans")
    assert result.exit_code == 2 and "--region" in result.stderr


def test_cli_list():
    result = invoke("list")
    assert result.exit_code == 0, result.output
    for name in ("kmeans", "linear-learner", "xgboost", "pytorch", "huggingface-llm"):
        assert name in result.stdout.split()
    result = invoke("list", "xgboost")
    assert result.exit_code == 0 and "1.7-1" in result.stdout and "sagemaker-xgboost" in result.stdout
    result = invoke("list", "kmeans", "--json")
    assert json.loads(result.stdout)["versions"] == ["1"]
    result = invoke("list", "nope")
    assert result.exit_code == 1 and "Unknown algorithm 'nope'" in result.stderr

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from forklift.control.instance_types import (
    GIB,
    INSTANCE_TYPES,
    UnknownInstanceType,
    check_instance_type,
    known_instance_types,
    resolve_instance_type,
)

ROOT = Path(__file__).resolve().parents[2]

BIG = dict(machine_cpus=256, machine_memory=4096 * GIB, machine_gpus=8)


@pytest.mark.parametrize("name,cpus,mem_gib,gpus", [
    ("ml.t2.medium", 2, 4, 0), ("ml.t3.xlarge", 4, 16, 0), ("ml.m4.xlarge", 4, 16, 0),
    ("ml.m5.large", 2, 8, 0), ("ml.m5.24xlarge", 96, 384, 0), ("ml.m6i.32xlarge", 128, 512, 0),
    ("ml.c5.2xlarge", 8, 16, 0), ("ml.r5.large", 2, 16, 0), ("ml.p3.2xlarge", 8, 61, 1),
    ("ml.p3.16xlarge", 64, 488, 8), ("ml.p4d.24xlarge", 96, 1152, 8), ("ml.g4dn.12xlarge", 48, 192, 4),
    ("ml.g5.xlarge", 4, 16, 1), ("ml.g5.48xlarge", 192, 768, 8),
])
def test_table(name, cpus, mem_gib, gpus):
    res = resolve_instance_type(name, **BIG)
    assert (res.cpus, res.memory_bytes, res.gpus) == (cpus, mem_gib * GIB, gpus)
    assert not res.clamped and res.warning is None and res.instance_type == name


def test_families_present():
    families = {name.split(".")[1] for name in INSTANCE_TYPES}
    assert {"t2", "t3", "m4", "m5", "m6i", "c5", "r5", "p3", "p4d", "g4dn", "g5"} <= families


def test_larger_than_the_machine_is_clamped_with_a_warning():
    res = resolve_instance_type("ml.p3.8xlarge", machine_cpus=2, machine_memory=8 * GIB, machine_gpus=0)
    assert (res.cpus, res.memory_bytes, res.gpus) == (2, 8 * GIB, 0)
    assert res.clamped
    assert "ml.p3.8xlarge" in res.warning and "32 vCPU -> 2" in res.warning and "4 GPU -> 0" in res.warning


def test_only_what_exceeds_is_clamped():
    res = resolve_instance_type("ml.m5.xlarge", machine_cpus=2, machine_memory=64 * GIB, machine_gpus=0)
    assert (res.cpus, res.memory_bytes) == (2, 16 * GIB)
    assert "GiB" not in res.warning


def test_defaults_to_this_machine():
    res = resolve_instance_type("ml.m5.24xlarge")
    assert 0 < res.cpus <= 96 and 0 < res.memory_bytes <= 384 * GIB


def test_unknown_instance_type_suggests_the_nearest_and_points_to_the_list():
    with pytest.raises(UnknownInstanceType) as exc:
        resolve_instance_type("ml.z9.huge")
    assert isinstance(exc.value, ValueError)
    message = str(exc.value)
    assert "ml.z9.huge" in message and "`forklift instance-types` lists the" in message and len(message) < 200
    with pytest.raises(UnknownInstanceType) as exc:
        resolve_instance_type("ml.m5.larg")
    assert "did you mean ml.m5.large" in str(exc.value)
    assert known_instance_types()[0].startswith("ml.")


def test_one_table_holds_what_the_api_accepts_for_training_and_hosting():
    """The table is the union of botocore's enums, each type marked with its uses, so the CLI and
    experiments accept and refuse what the API does."""
    from botocore.session import get_session

    model = get_session().get_service_model("sagemaker")
    training = set(model.shape_for("TrainingInstanceType").enum)
    hosting = set(model.shape_for("ProductionVariantInstanceType").enum)
    assert set(INSTANCE_TYPES) == training | hosting
    assert set(known_instance_types("training")) == training
    assert set(known_instance_types("hosting")) == hosting
    assert check_instance_type("ml.c7i.large", "training").vcpu == 2
    with pytest.raises(UnknownInstanceType) as exc:
        check_instance_type("ml.t2.medium", "training")
    assert "ml.t2.medium is not a training instance type (SageMaker accepts it for hosting)" in str(exc.value)
    assert "did you mean ml.t3.medium" in str(exc.value)


def test_table_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_instance_types.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + "\nrun scripts/gen_instance_types.py to regenerate"


def test_accelerators_forklift_cannot_hand_over_are_said():
    res = resolve_instance_type("ml.trn1.2xlarge", **BIG)
    assert res.gpus == 0 and res.clamped and "1 Neuron/Gaudi accelerators -> 0" in res.warning

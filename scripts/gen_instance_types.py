#!/usr/bin/env python3
"""Generate forklift's instance-type table (src/forklift/data/instance_types.json).

The names come from botocore's SageMaker service model, the same enums the API validates against:
`TrainingInstanceType` (CreateTrainingJob) and `ProductionVariantInstanceType` (endpoint
variants). So the API, `forklift run`, `forklift experiments` and `forklift instance-types` accept
exactly the same names, each marked with what SageMaker lets it do.

Sizes follow EC2's naming (`large` = 2 vCPU, `xlarge` = 4, `Nxlarge` = 4N) and the memory per vCPU of
each family; accelerated families carry their published figures. An instance family botocore names
and this script does not know stops the script, so a botocore update cannot add a type without
figures.

    .venv/bin/python scripts/gen_instance_types.py            # (re)write the data file
    .venv/bin/python scripts/gen_instance_types.py --check    # exit 1 if the data is out of date
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_FILE = ROOT / "src" / "forklift" / "data" / "instance_types.json"
ENUMS = {"training": "TrainingInstanceType", "hosting": "ProductionVariantInstanceType"}

# GiB of memory per vCPU by the family's class letter (c: compute, m: general purpose, r: memory).
MEMORY_PER_VCPU = {"c": 2.0, "m": 4.0, "r": 8.0}
# Families that differ from their class's ratio.
MEMORY_PER_VCPU_FAMILY = {"c4": 1.875}
# Graviton families (arm64): the generation digit followed by 'g'.
GRAVITON = re.compile(r"^[cmr]\d+g")

# size -> (memory GiB, NVIDIA GPUs, other accelerators) for the families whose figures don't follow a
# ratio. "Other accelerators" are AWS Trainium/Inferentia (Neuron) and Intel Gaudi devices, which
# forklift cannot hand to a container; they are listed so `forklift instance-types` tells the truth.
EXPLICIT: dict[str, dict[str, tuple[float, int, int]]] = {
    "t2": {"medium": (4, 0, 0), "large": (8, 0, 0), "xlarge": (16, 0, 0), "2xlarge": (32, 0, 0)},
    "t3": {"medium": (4, 0, 0), "large": (8, 0, 0), "xlarge": (16, 0, 0), "2xlarge": (32, 0, 0)},
    "c5n": {"xlarge": (10.5, 0, 0), "2xlarge": (21, 0, 0), "4xlarge": (42, 0, 0), "9xlarge": (96, 0, 0),
            "18xlarge": (192, 0, 0)},
    "p2": {"xlarge": (61, 1, 0), "8xlarge": (488, 8, 0), "16xlarge": (732, 16, 0)},
    "p3": {"2xlarge": (61, 1, 0), "8xlarge": (244, 4, 0), "16xlarge": (488, 8, 0)},
    "p3dn": {"24xlarge": (768, 8, 0)},
    "p4d": {"24xlarge": (1152, 8, 0)},
    "p4de": {"24xlarge": (1152, 8, 0)},
    "p5": {"4xlarge": (256, 1, 0), "48xlarge": (2048, 8, 0)},
    "p5e": {"48xlarge": (2048, 8, 0)},
    "p5en": {"48xlarge": (2048, 8, 0)},
    "p6-b200": {"48xlarge": (2048, 8, 0)},
    "p6-b300": {"48xlarge": (4096, 8, 0)},
    "p6e-gb200": {"36xlarge": (960, 4, 0)},
    "g4dn": {"xlarge": (16, 1, 0), "2xlarge": (32, 1, 0), "4xlarge": (64, 1, 0), "8xlarge": (128, 1, 0),
             "12xlarge": (192, 4, 0), "16xlarge": (256, 1, 0)},
    "g5": {"xlarge": (16, 1, 0), "2xlarge": (32, 1, 0), "4xlarge": (64, 1, 0), "8xlarge": (128, 1, 0),
           "12xlarge": (192, 4, 0), "16xlarge": (256, 1, 0), "24xlarge": (384, 4, 0), "48xlarge": (768, 8, 0)},
    "g6": {"xlarge": (16, 1, 0), "2xlarge": (32, 1, 0), "4xlarge": (64, 1, 0), "8xlarge": (128, 1, 0),
           "12xlarge": (192, 4, 0), "16xlarge": (256, 1, 0), "24xlarge": (384, 4, 0), "48xlarge": (768, 8, 0)},
    "g6e": {"xlarge": (32, 1, 0), "2xlarge": (64, 1, 0), "4xlarge": (128, 1, 0), "8xlarge": (256, 1, 0),
            "12xlarge": (384, 4, 0), "16xlarge": (512, 1, 0), "24xlarge": (768, 4, 0), "48xlarge": (1536, 8, 0)},
    # g7 and g7e: GPU counts as published for g7e; memory at g7e's 8 GiB per vCPU for both.
    "g7": {"2xlarge": (64, 1, 0), "4xlarge": (128, 1, 0), "8xlarge": (256, 1, 0), "12xlarge": (384, 2, 0),
           "24xlarge": (768, 4, 0), "48xlarge": (1536, 8, 0)},
    "g7e": {"2xlarge": (64, 1, 0), "4xlarge": (128, 1, 0), "8xlarge": (256, 1, 0), "12xlarge": (384, 2, 0),
            "24xlarge": (768, 4, 0), "48xlarge": (1536, 8, 0)},
    "inf1": {"xlarge": (8, 0, 1), "2xlarge": (16, 0, 1), "6xlarge": (48, 0, 4), "24xlarge": (192, 0, 16)},
    "inf2": {"xlarge": (16, 0, 1), "8xlarge": (128, 0, 1), "24xlarge": (384, 0, 6), "48xlarge": (768, 0, 12)},
    "trn1": {"2xlarge": (32, 0, 1), "32xlarge": (512, 0, 16)},
    "trn1n": {"32xlarge": (512, 0, 16)},
    "trn2": {"48xlarge": (2048, 0, 16)},
    "dl1": {"24xlarge": (768, 0, 8)},
}
# Burstable families whose `medium` has 2 vCPUs (elsewhere `medium` is 1).
TWO_VCPU_MEDIUM = {"t2", "t3"}
# Sizes whose vCPUs are not 4 per `xlarge`.
VCPU_EXCEPTIONS = {"ml.c4.8xlarge": 36}


def vcpus(family: str, size: str) -> int:
    if size == "medium":
        return 2 if family in TWO_VCPU_MEDIUM else 1
    if size == "large":
        return 2
    match = re.fullmatch(r"(\d*)xlarge", size)
    if not match:
        raise SystemExit(f"gen_instance_types: size {size!r} of {family} does not follow EC2's naming")
    return 4 * int(match.group(1) or 1)


def figures(name: str) -> dict:
    _, family, size = name.split(".", 2)
    cpu = VCPU_EXCEPTIONS.get(name) or vcpus(family, size)
    if family in EXPLICIT:
        if size not in EXPLICIT[family]:
            raise SystemExit(f"gen_instance_types: no figures for {name}: add its size to EXPLICIT[{family!r}]")
        memory, gpus, accelerators = EXPLICIT[family][size]
    else:
        base = re.sub(r"-flex$", "", family)
        ratio = MEMORY_PER_VCPU_FAMILY.get(base, MEMORY_PER_VCPU.get(base[0]))
        if ratio is None or not re.fullmatch(r"[cmr]\d+[a-z]*", base):
            raise SystemExit(f"gen_instance_types: unknown instance family {family!r} ({name}): add its figures")
        memory, gpus, accelerators = vcpus(family, size) * ratio, 0, 0
    entry = {"vcpu": cpu, "memory_gib": memory, "gpus": gpus}
    if accelerators:
        entry["accelerators"] = accelerators
    if GRAVITON.match(family):
        entry["arch"] = "arm64"
    return entry


def build() -> str:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    uses: dict[str, list[str]] = {}
    for use, shape in ENUMS.items():
        for name in model.shape_for(shape).enum:
            uses.setdefault(name, []).append(use)
    types = {name: {**figures(name), "uses": sorted(uses[name])} for name in sorted(uses)}
    doc = {"source": {"botocore": importlib.metadata.version("botocore"), "enums": ENUMS}, "types": types}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="fail if the table's data is out of date "
                             "(the botocore version it records is not compared)")
    parser.add_argument("--data-file", type=Path, default=DATA_FILE)
    args = parser.parse_args()
    data = build()
    if args.check:
        fresh = json.loads(data)["types"]
        try:
            recorded = json.loads(args.data_file.read_text())["types"]
        except (OSError, ValueError, KeyError):
            recorded = {}
        stale = sorted(n for n in set(fresh) | set(recorded) if fresh.get(n) != recorded.get(n))
        if stale:
            print(f"gen_instance_types: out of date: {', '.join(stale[:20])}"
                  f"{f' and {len(stale) - 20} more' if len(stale) > 20 else ''}", file=sys.stderr)
            return 1
        return 0
    args.data_file.write_text(data)
    print(f"wrote {args.data_file} ({len(json.loads(data)['types'])} instance types)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

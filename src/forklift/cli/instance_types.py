"""`forklift instance-types`: the `ml.*` instance types the API, `forklift run` and experiments take."""

from __future__ import annotations

import click

from forklift.cli.output import emit_json, output_option, print_table

# What a command needs beyond these is imported inside it, so that `forklift --help` and the other
# commands start without it.


@click.command("instance-types")
@click.option("--training", "use", flag_value="training", help="Only the types SageMaker trains on.")
@click.option("--hosting", "use", flag_value="hosting", help="Only the types SageMaker hosts endpoints on.")
@click.option("--family", help="Only this family, e.g. g5 or m5.")
@output_option
def instance_types(use: str | None, family: str | None, output: str) -> None:
    """Instance types with their vCPUs, memory and GPUs, and what a container gets on this machine.

    Types larger than this machine are clamped to it: GPUs the machine lacks become 0."""
    from forklift.control.instance_types import TABLE, known_instance_types, resolve_instance_type

    names = [n for n in known_instance_types(use) if family is None or n.split(".")[1] == family]
    if not names:
        raise click.ClickException(f"no instance types in family {family!r}" if family else "no instance types")
    rows = []
    for name in names:
        entry, here = TABLE[name], resolve_instance_type(name)
        rows.append({"InstanceType": name, "VCpu": entry.vcpu, "MemoryGiB": entry.memory_gib, "Gpus": entry.gpus,
                     "Accelerators": entry.accelerators, "Architecture": entry.arch, "Uses": list(entry.uses),
                     "Here": {"VCpu": here.cpus, "MemoryGiB": round(here.memory_bytes / 1024**3, 1),
                              "Gpus": here.gpus, "Clamped": here.clamped}})
    if output == "json":
        emit_json({"InstanceTypes": rows})
        return
    print_table(("INSTANCE TYPE", "VCPU", "MEMORY", "GPUS", "USES", "HERE"),
                [(r["InstanceType"], str(r["VCpu"]), f"{r['MemoryGiB']:g} GiB",
                  str(r["Gpus"]) + (f" (+{r['Accelerators']} Neuron/Gaudi)" if r["Accelerators"] else ""),
                  ",".join(r["Uses"]) + (f" ({r['Architecture']})" if r["Architecture"] != "x86_64" else ""),
                  (f"{r['Here']['VCpu']:g} vCPU, {r['Here']['MemoryGiB']:g} GiB, {r['Here']['Gpus']} GPU", "yellow")
                  if r["Here"]["Clamped"] else "as is") for r in rows])

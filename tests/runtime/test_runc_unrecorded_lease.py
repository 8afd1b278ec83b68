"""A process killed after it leased a container's /30 and set up its namespace, but before it wrote
the lease into container.json: the container's teardown still releases the lease, the namespace, the
veth and the port rules, found by the lease's owner."""

from __future__ import annotations

import json
import subprocess

from forklift.runtime import bundle, network


def test_teardown_releases_a_lease_container_json_never_recorded(runtime, tmp_path):
    name = "unrecorded"
    runtime.names.add(name)  # the fixture's cleanup reports (and removes) whatever is left
    cid = f"forklift-{name}"
    net = network.setup_isolated(cid, [5000], runtime.pool)
    state_dir = tmp_path / name
    state_dir.mkdir()
    (state_dir / "container.json").write_text(json.dumps({  # as bundle.prepare writes it before leasing
        "id": cid, "name": name, "state_dir": str(state_dir), "runc": runtime.cli.to_json(),
        "network": "isolated", "isolated": None,
        "pool": {"table": str(runtime.pool.table), "pool": str(runtime.pool.pool)},
        "overlay": {"lower": str(tmp_path), "upper": str(state_dir / "upper"), "work": str(state_dir / "work"),
                    "merged": str(state_dir / "rootfs")}}))

    bundle.teardown(state_dir)

    assert cid not in [lease.owner for lease in runtime.pool.leases()]
    assert not network.netns_exists(net.lease.netns)
    rules = subprocess.run(["iptables", "-w", "-S", network.CHAIN], capture_output=True, text=True).stdout
    assert f"forklift:{cid}" not in rules

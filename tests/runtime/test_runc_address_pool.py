"""The /30 lease table, without touching the host's network."""

from __future__ import annotations

import multiprocessing

import pytest

from forklift.runtime.network import AddressPool, NetworkError, PoolExhausted


def test_leases_are_30s_with_gateway_and_container_addresses(tmp_path):
    pool = AddressPool(tmp_path / "leases.json", "10.213.0.0/16")
    a = pool.allocate("forklift-a")
    b = pool.allocate("forklift-b")
    assert (a.subnet, a.gateway, a.address) == ("10.213.0.0/30", "10.213.0.1", "10.213.0.2")
    assert (b.subnet, b.gateway, b.address) == ("10.213.0.4/30", "10.213.0.5", "10.213.0.6")
    assert a.host_if == "fkh0" and a.netns == "forklift-0" and len(b.host_if) <= 15
    assert pool.allocate("forklift-a") == a  # idempotent per owner


def test_the_table_survives_a_new_pool_object_and_release_frees(tmp_path):
    table = tmp_path / "leases.json"
    a = AddressPool(table).allocate("forklift-a")
    again = AddressPool(table)
    assert again.leases() == [a]
    assert again.allocate("forklift-b").index == 1
    again.release(a)
    assert [lease.owner for lease in AddressPool(table).leases()] == ["forklift-b"]


def test_round_robin_and_exhaustion(tmp_path):
    pool = AddressPool(tmp_path / "leases.json", "10.213.9.0/29")  # two /30s
    a = pool.allocate("a")
    pool.allocate("b")
    with pytest.raises(PoolExhausted):
        pool.allocate("c")
    pool.release(a)
    assert pool.allocate("c").index == 0


def test_a_table_of_another_pool_is_refused(tmp_path):
    AddressPool(tmp_path / "leases.json", "10.213.0.0/16").allocate("a")
    with pytest.raises(NetworkError, match="10.213.0.0/16"):
        AddressPool(tmp_path / "leases.json", "10.213.4.0/24").allocate("b")


def _grab(args):
    table, owners = args
    pool = AddressPool(table)
    return [pool.allocate(owner).index for owner in owners]


def test_concurrent_processes_never_share_a_subnet(tmp_path):
    table = tmp_path / "leases.json"
    work = [(table, [f"p{p}-{i}" for i in range(25)]) for p in range(4)]
    with multiprocessing.get_context("fork").Pool(4) as procs:
        indexes = [i for chunk in procs.map(_grab, work) for i in chunk]
    assert len(indexes) == 100 and len(set(indexes)) == 100

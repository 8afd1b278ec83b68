"""Network modes with real containers: isolated /30s, allow-listed host ports, none, host."""

from __future__ import annotations

import subprocess
import time
import urllib.request

from forklift.runtime import network

# For each HOST:PORT argument print "HOST:PORT <what the peer said>" or "HOST:PORT fail <error>".
PROBE = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1) as s:
            s.settimeout(1)
            print(target, s.recv(16).decode().strip())
    except OSError as exc:
        print(target, "fail", type(exc).__name__)
"""


def probe(runtime, rootfs, targets: list[str], **kw) -> dict[str, str]:
    handle = runtime.start(runtime.spec(rootfs, entrypoint=["python3", "-c", PROBE, *targets], **kw))
    status = handle.wait(15)
    assert status is not None and status.code == 0, list(handle.logs())
    return dict(line.split(" ", 1) for line in handle.logs())


def get(url: str, deadline: float) -> tuple[int, bytes]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return resp.status, resp.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_two_servers_on_port_8080_reached_at_their_own_addresses(runtime, pyslim_rootfs):
    t0 = time.monotonic()
    handles = [runtime.start(runtime.spec(pyslim_rootfs, entrypoint=["python3", "-m", "http.server", "8080"],
                                          workdir="/srv", network="isolated")) for _ in range(2)]
    try:
        a, b = (h.address for h in handles)
        assert a != b and a.startswith("10.213.") and b.startswith("10.213.")
        for h in handles:
            assert get(f"http://{h.address}:8080/index.html", t0 + 10) == (200, b"hello from pyslim\n")
        print(f"two servers started and answered in {time.monotonic() - t0:.2f}s")
    finally:
        statuses = [h.stop(grace=0.2) for h in handles]
    assert all(s.reason == "killed" for s in statuses)  # python as pid 1 ignores SIGTERM


def test_isolated_reaches_only_the_allowed_host_ports(runtime, pyslim_rootfs, host_listener, host_address):
    allowed, denied = host_listener(), host_listener()
    outside = host_address
    spec_kw = dict(network="isolated", allowed_host_ports=[allowed])
    targets = [f"host.forklift.internal:{allowed}", f"host.forklift.internal:{denied}", f"{outside}:{allowed}",
               "8.8.8.8:53"]
    result = probe(runtime, pyslim_rootfs, targets, **spec_kw)
    assert result[targets[0]] == "hi"
    assert result[targets[1]].startswith("fail")  # dropped by FORKLIFT-IN
    assert result[targets[2]].startswith("fail")  # no route beyond the /30
    assert result[targets[3]].startswith("fail")


def test_isolated_container_knows_its_gateway(runtime, busybox_rootfs):
    handle = runtime.start(runtime.spec(busybox_rootfs, network="isolated", entrypoint=["sh", "-c"],
                                        args=["echo $FORKLIFT_HOST_GATEWAY; grep forklift /etc/hosts; hostname -i"]))
    assert handle.wait(10).code == 0
    lines = list(handle.logs())
    assert lines[0] == handle.gateway
    assert lines[1].split() == [handle.gateway, "host.forklift.internal"]
    assert lines[2] == handle.address
    handle.stop()


def test_none_has_only_loopback(runtime, pyslim_rootfs, host_listener, host_address):
    port = host_listener()
    targets = [f"{host_address}:{port}", f"127.0.0.1:{port}", f"10.213.0.1:{port}"]
    result = probe(runtime, pyslim_rootfs, targets, network="none")
    assert all(v.startswith("fail") for v in result.values()), result


def test_host_network_reaches_host_services(runtime, pyslim_rootfs, host_listener):
    port = host_listener()
    assert probe(runtime, pyslim_rootfs, [f"127.0.0.1:{port}"], network="host") == {f"127.0.0.1:{port}": "hi"}


def test_network_resources_are_removed_with_the_container(runtime, busybox_rootfs):
    handle = runtime.start(runtime.spec(busybox_rootfs, network="isolated", allowed_host_ports=[18123],
                                        entrypoint=["sleep", "30"]))
    lease = network.Lease(**handle._meta["isolated"]["lease"])
    rules = subprocess.run(["iptables", "-w", "-S", network.CHAIN], capture_output=True, text=True).stdout
    assert f'--dport 18123 -m comment --comment "forklift:{handle.id}"' in rules
    assert network.netns_exists(lease.netns)
    assert len(lease.host_if) <= 15
    handle.stop(grace=0.1)
    rules = subprocess.run(["iptables", "-w", "-S", network.CHAIN], capture_output=True, text=True).stdout
    assert handle.id not in rules
    assert not network.netns_exists(lease.netns)
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout.split()
    assert lease.host_if not in links and f"{lease.host_if}@if2" not in links
    assert all(lease.owner != handle.id for lease in runtime.pool.leases())

"""Per-container network namespaces: a veth pair and a private /30 for each isolated container.

    host  fkh<N>  10.213.x.1/30  <-- veth -->  eth0 10.213.x.2/30  netns forklift-<N>

The container has no default route, so it reaches only the host side of its own /30. Host
services bound to 0.0.0.0 would be reachable there, so the INPUT chain jumps to `FORKLIFT-IN`
for every `fkh+` interface: replies to host-initiated connections are accepted, each container's
allowed ports are accepted on its own interface and gateway address, everything else is dropped.
IPv6 is disabled on the host side so the same holds for link-local addresses.

/30s are leased from a pool in a small JSON table guarded by flock(2), shared by every forklift
process on the machine.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from forklift.atomicfile import write_atomically
from forklift.fslock import locked
from forklift.runtime.errors import ContainerRuntimeError

DEFAULT_POOL = "10.213.0.0/16"
DEFAULT_TABLE = Path("/run/forklift/network/leases.json")
CHAIN = "FORKLIFT-IN"
HOST_IF_PREFIX = "fkh"
NETNS_PREFIX = "forklift-"
NETNS_DIR = Path("/var/run/netns")


class NetworkError(ContainerRuntimeError, RuntimeError):
    pass


class PoolExhausted(NetworkError):
    pass


@dataclass(frozen=True)
class Lease:
    index: int
    subnet: str  # "10.213.0.4/30"
    gateway: str  # host side, .1
    address: str  # container side, .2
    owner: str

    @property
    def netns(self) -> str:
        return f"{NETNS_PREFIX}{self.index}"

    @property
    def netns_path(self) -> str:
        return str(NETNS_DIR / self.netns)

    @property
    def host_if(self) -> str:
        return f"{HOST_IF_PREFIX}{self.index}"  # <= 15 chars up to 10^12 leases


@dataclass(frozen=True)
class IsolatedNetwork:
    """What a container's isolated network is, kept in container.json for teardown."""

    lease: Lease
    allowed_host_ports: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"lease": asdict(self.lease), "allowed_host_ports": list(self.allowed_host_ports)}

    @classmethod
    def from_json(cls, data: dict) -> IsolatedNetwork:
        return cls(lease=Lease(**data["lease"]), allowed_host_ports=list(data.get("allowed_host_ports", [])))


def _run(argv: list[str], input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetworkError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


class AddressPool:
    """Leases /30 subnets out of `pool`; the table survives process restarts."""

    def __init__(self, table: Path = DEFAULT_TABLE, pool: str = DEFAULT_POOL):
        self.table = Path(table)
        self.pool = ipaddress.IPv4Network(pool)
        if self.pool.prefixlen > 30:
            raise ValueError(f"address pool {pool} is smaller than a /30")
        self.size = self.pool.num_addresses // 4

    @contextmanager
    def _locked(self):
        self.table.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.table.with_suffix(".lock")):
            try:
                data = json.loads(self.table.read_text()) if self.table.exists() else {}
            except ValueError:
                data = {}
            if data.get("pool") != str(self.pool):
                if data.get("leases"):
                    raise NetworkError(f"{self.table} holds leases of pool {data.get('pool')}, not {self.pool}")
                data = {"pool": str(self.pool), "next": 0, "leases": {}}
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                write_atomically(self.table, json.dumps(data, indent=1, sort_keys=True).encode())

    def _lease(self, index: int, owner: str) -> Lease:
        base = self.pool.network_address + 4 * index
        return Lease(index=index, subnet=f"{base}/30", gateway=str(base + 1), address=str(base + 2), owner=owner)

    def allocate(self, owner: str) -> Lease:
        with self._locked() as data:
            leases = data.setdefault("leases", {})
            for key, entry in leases.items():
                if entry["owner"] == owner:
                    return self._lease(int(key), owner)
            start = int(data.get("next", 0)) % self.size
            for step in range(self.size):  # round robin: a freed /30 is not reused at once
                index = (start + step) % self.size
                if str(index) not in leases:
                    leases[str(index)] = {"owner": owner, "since": time.time()}
                    data["next"] = (index + 1) % self.size
                    return self._lease(index, owner)
        raise PoolExhausted(f"no free /30 left in {self.pool}")

    def release(self, lease: Lease) -> None:
        with self._locked() as data:
            entry = data.get("leases", {}).get(str(lease.index))
            if entry and entry["owner"] == lease.owner:
                del data["leases"][str(lease.index)]

    def leases(self) -> list[Lease]:
        with self._locked() as data:
            return [self._lease(int(k), v["owner"]) for k, v in data.get("leases", {}).items()]

    def taken(self) -> list[tuple[Lease, float]]:
        """Every lease with the time it was taken."""
        with self._locked() as data:
            return [(self._lease(int(k), v["owner"]), float(v.get("since") or 0))
                    for k, v in data.get("leases", {}).items()]

    @contextmanager
    def holding(self):
        """The table locked (no lease taken or released meanwhile); yields the namespaces leases name."""
        with self._locked() as data:
            yield {f"{NETNS_PREFIX}{k}" for k in data.get("leases", {})}

    @contextmanager
    def firewall_lock(self):
        """Serialises changes to the shared FORKLIFT-IN chain."""
        self.table.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.table.with_suffix(".iptables.lock")):
            yield


def _port_rules(net: IsolatedNetwork) -> list[str]:
    lease = net.lease
    return [f"{CHAIN} -i {lease.host_if} -d {lease.gateway}/32 -p tcp -m tcp --dport {port} "
            f"-m comment --comment forklift:{lease.owner} -j ACCEPT"
            for port in sorted(set(net.allowed_host_ports))]


def ensure_chain(pool: AddressPool) -> None:
    """Create FORKLIFT-IN and its jump from INPUT once; idempotent across processes."""
    with pool.firewall_lock():
        rules = _run(["iptables", "-w", "-S"]).stdout.splitlines()
        if f"-N {CHAIN}" not in rules:
            _run(["iptables", "-w", "-N", CHAIN])
        jump = f"-A INPUT -i {HOST_IF_PREFIX}+ -j {CHAIN}"
        if jump not in rules:
            _run(["iptables", "-w", "-I", "INPUT", "1", "-i", f"{HOST_IF_PREFIX}+", "-j", CHAIN])
        established = f"-A {CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        if established not in rules:
            _run(["iptables", "-w", "-A", CHAIN, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED",
                  "-j", "ACCEPT"])
        if f"-A {CHAIN} -j DROP" not in rules:
            _run(["iptables", "-w", "-A", CHAIN, "-j", "DROP"])


def _links(lease: Lease) -> None:
    host_cmds = f"netns add {lease.netns}\nlink add {lease.host_if} type veth peer name eth0 netns {lease.netns}\n"
    proc = _run(["ip", "-batch", "-"], input=host_cmds, check=False)
    if proc.returncode != 0 and "exists" in proc.stderr:
        _remove_links(lease)  # left over from a crashed process holding the same lease earlier
        proc = _run(["ip", "-batch", "-"], input=host_cmds, check=False)
    if proc.returncode != 0:
        raise NetworkError(f"creating {lease.netns}/{lease.host_if}: {proc.stderr.strip()}")
    try:
        Path(f"/proc/sys/net/ipv6/conf/{lease.host_if}/disable_ipv6").write_text("1")
    except OSError:
        pass  # no IPv6 on this host
    _run(["ip", "-batch", "-"], input=f"addr add {lease.gateway}/30 dev {lease.host_if}\nlink set {lease.host_if} up\n")
    _run(["ip", "-n", lease.netns, "-batch", "-"],
         input=f"addr add {lease.address}/30 dev eth0\nlink set eth0 up\nlink set lo up\n")


def _remove_links(lease: Lease) -> None:
    # Delete the host end first: netns deletion is asynchronous and would leave it behind briefly.
    _run(["ip", "-force", "-batch", "-"], input=f"link del {lease.host_if}\nnetns del {lease.netns}\n", check=False)


def _restore(lines: list[str]) -> bool:
    if not lines:
        return True
    body = "*filter\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"
    return _run(["iptables-restore", "-w", "--noflush"], input=body, check=False).returncode == 0


def setup_isolated(owner: str, allowed_host_ports: list[int], pool: AddressPool) -> IsolatedNetwork:
    """Lease a /30, create netns + veth, open `allowed_host_ports` on the gateway address."""
    lease = pool.allocate(owner)
    net = IsolatedNetwork(lease=lease, allowed_host_ports=sorted(set(int(p) for p in allowed_host_ports)))
    try:
        ensure_chain(pool)
        _links(lease)
        with pool.firewall_lock():
            if not _restore([f"-I {rule}" for rule in _port_rules(net)]):
                raise NetworkError(f"iptables: cannot add rules for {owner}")
    except BaseException:
        teardown(net, pool)
        raise
    return net


def teardown(net: IsolatedNetwork, pool: AddressPool) -> None:
    """Remove rules, veth and netns, and free the /30. Safe to call more than once."""
    rules = _port_rules(net)
    if rules:
        with pool.firewall_lock():
            if not _restore([f"-D {rule}" for rule in rules]):
                for rule in rules:  # some already gone: remove the rest one by one
                    _run(["iptables", "-w", "-D", *rule.split()], check=False)
    _remove_links(net.lease)
    pool.release(net.lease)


def release_owner(owner: str, pool: AddressPool) -> None:
    """Tear down whatever network `owner` leased, by the table alone: for a process killed after it
    leased a /30 and before it recorded the lease anywhere else. Its port rules are found by their
    comment, whatever ports they opened."""
    leases = [lease for lease in pool.leases() if lease.owner == owner]
    if not leases:
        return
    with pool.firewall_lock():
        rules = _run(["iptables", "-w", "-S", CHAIN], check=False).stdout.splitlines()
        for rule in rules:
            words = shlex.split(rule)  # iptables -S quotes the comment
            if words[:2] == ["-A", CHAIN] and f"forklift:{owner}" in words:
                _run(["iptables", "-w", "-D", *words[1:]], check=False)
    for lease in leases:
        teardown(IsolatedNetwork(lease), pool)


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()

"""config.json generation, without running anything."""

from __future__ import annotations

import io
import json
import os
import resource
import stat
import sys
from pathlib import Path

import pytest

from forklift.runtime import ContainerSpec, Mount, SpecError, gpuhook, ocispec


@pytest.fixture
def rootfs(tmp_path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\napp:x:1001:\nvideo:x:44:app,other\nstaff:x:50:\n")
    return root


def make(rootfs: Path, **kw) -> ContainerSpec:
    kw.setdefault("image_config", {"Entrypoint": ["/entry"], "Cmd": ["serve"], "Env": ["PATH=/img/bin", "A=1"],
                                   "WorkingDir": "/opt/ml/code"})
    return ContainerSpec(name="job-1", rootfs=rootfs, state_dir=rootfs.parent / "state", **kw)


def config(rootfs: Path, **kw) -> dict:
    return ocispec.build_config(make(rootfs, **kw), Path("/merged"), netns_path="/var/run/netns/forklift-1")


@pytest.mark.parametrize("entrypoint,args,expected", [
    (None, None, ["/entry", "serve"]),
    (None, ["train", "--epochs", "2"], ["/entry", "train", "--epochs", "2"]),
    (["/bin/sh", "-c"], None, ["/bin/sh", "-c"]),  # a new entrypoint clears Cmd
    (["/bin/sh", "-c"], ["echo hi"], ["/bin/sh", "-c", "echo hi"]),
    ([], ["python3"], ["python3"]),  # an empty entrypoint resets it
])
def test_command_follows_docker_override_rules(rootfs, entrypoint, args, expected):
    assert ocispec.command_line(make(rootfs, entrypoint=entrypoint, args=args)) == expected


def test_no_command_is_an_error(rootfs):
    with pytest.raises(SpecError, match="no command"):
        ocispec.command_line(make(rootfs, image_config={}))


def test_env_is_merged_over_the_image_env(rootfs):
    env = config(rootfs, env={"A": "2", "B": "x=y"})["process"]["env"]
    assert env[:3] == ["PATH=/img/bin", "A=2", "B=x=y"]
    assert "HOSTNAME=job-1" in env
    assert "PATH=" + ocispec.DEFAULT_PATH in ocispec.environment(make(rootfs, image_config={"Cmd": ["x"]}))


def test_process_basics(rootfs):
    cfg = config(rootfs, workdir="/work", labels={"team": "ml"}, hostname="box")
    proc = cfg["process"]
    assert proc["terminal"] is False and proc["noNewPrivileges"] is True
    assert proc["cwd"] == "/work"
    assert config(rootfs)["process"]["cwd"] == "/opt/ml/code"
    assert proc["capabilities"]["bounding"] == ocispec.DEFAULT_CAPABILITIES
    assert len(ocispec.DEFAULT_CAPABILITIES) == 14
    assert cfg["root"] == {"path": "/merged", "readonly": False}
    assert cfg["hostname"] == "box"
    assert cfg["annotations"] == {"team": "ml"}
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"] and "/proc/sys" in cfg["linux"]["readonlyPaths"]
    assert cfg["linux"]["cgroupsPath"] == "/forklift/job-1"
    json.dumps(cfg)


def test_rlimits_are_clamped_to_the_callers_hard_limits(rootfs):
    limits = {r["type"]: r for r in config(rootfs)["process"]["rlimits"]}
    for name, res in (("RLIMIT_NOFILE", resource.RLIMIT_NOFILE), ("RLIMIT_NPROC", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(res)[1]
        if hard != resource.RLIM_INFINITY:
            assert limits[name]["hard"] <= hard and limits[name]["soft"] <= limits[name]["hard"]


@pytest.mark.parametrize("user,expected", [
    (None, {"uid": 0, "gid": 0}),
    ("app", {"uid": 1000, "gid": 1001, "additionalGids": [44]}),
    ("1000", {"uid": 1000, "gid": 1001, "additionalGids": [44]}),
    ("1234", {"uid": 1234, "gid": 0}),
    ("1234:5", {"uid": 1234, "gid": 5}),
    ("app:staff", {"uid": 1000, "gid": 50, "additionalGids": [44]}),
])
def test_user_resolution(rootfs, user, expected):
    assert ocispec.resolve_user(rootfs, user) == expected


def test_unknown_user_is_an_error(rootfs):
    with pytest.raises(SpecError, match="nobody"):
        ocispec.resolve_user(rootfs, "nobody")
    with pytest.raises(SpecError, match="wheel"):
        ocispec.resolve_user(rootfs, "app:wheel")


def test_non_root_user_gets_no_effective_capabilities(rootfs):
    caps = config(rootfs, user="app")["process"]["capabilities"]
    assert caps["effective"] == [] and caps["bounding"]


def test_passwd_symlink_out_of_the_rootfs_is_ignored(rootfs):
    (rootfs / "etc/passwd").unlink()
    (rootfs / "etc/passwd").symlink_to("/etc/passwd")
    with pytest.raises(SpecError):
        ocispec.resolve_user(rootfs, "root")  # the host's root entry must not be used


def test_mounts(rootfs, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cfg = config(rootfs, mounts=[Mount(data, "/opt/ml/input/data", read_only=True), Mount(data, "/out")])
    mounts = {m["destination"]: m for m in cfg["mounts"]}
    for dest in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"):
        assert dest in mounts
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert mounts["/opt/ml/input/data"] == {"destination": "/opt/ml/input/data", "type": "bind", "source": str(data),
                                            "options": ["rbind", "nosuid", "nodev", "ro"]}
    assert mounts["/out"]["options"][-1] == "rw"
    with pytest.raises(SpecError, match="does not exist"):
        config(rootfs, mounts=[Mount(tmp_path / "missing", "/x")])
    with pytest.raises(SpecError, match="absolute"):
        config(rootfs, mounts=[Mount(data, "relative")])


def test_resources(rootfs):
    res = config(rootfs, cpus=1.5, memory_bytes=64 << 20, pids_limit=100)["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 64 << 20}
    assert res["cpu"] == {"quota": 150000, "period": 100000}
    assert res["pids"] == {"limit": 100}
    assert res["devices"][0] == {"allow": False, "access": "rwm"}
    assert set(config(rootfs)["linux"]["resources"]) == {"devices"}


@pytest.mark.parametrize("mode,expected", [
    ("isolated", {"type": "network", "path": "/var/run/netns/forklift-1"}),
    ("none", {"type": "network"}),
    ("host", None),
])
def test_network_namespace(rootfs, mode, expected):
    ns = config(rootfs, network=mode)["linux"]["namespaces"]
    assert [n["type"] for n in ns][:4] == ["pid", "ipc", "uts", "mount"]
    net = [n for n in ns if n["type"] == "network"]
    assert net == ([expected] if expected else [])


def test_spec_validation(tmp_path):
    for bad in ("", "-x", "a/b", "a b", "x" * 101):
        with pytest.raises(SpecError):
            ContainerSpec(name=bad, rootfs=tmp_path, state_dir=tmp_path)
    with pytest.raises(SpecError, match="network"):
        ContainerSpec(name="a", rootfs=tmp_path, state_dir=tmp_path, network="bridge")
    with pytest.raises(SpecError, match="port"):
        ContainerSpec(name="a", rootfs=tmp_path, state_dir=tmp_path, allowed_host_ports=[70000])
    assert ContainerSpec(name="a", rootfs=tmp_path, state_dir=tmp_path).container_id == "forklift-a"


def test_gpu_spec_without_gpus_on_the_host(rootfs, tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    cfg = ocispec.build_config(make(rootfs, gpu_count=2), Path("/merged"), netns_path="/n",
                               nvidia_cli="/opt/nvidia-container-cli", dev=dev)
    devices = cfg["linux"]["devices"]
    assert [(d["path"], d["major"], d["minor"]) for d in devices] == [
        (str(dev / "nvidia0"), 195, 0), (str(dev / "nvidia1"), 195, 1), (str(dev / "nvidiactl"), 195, 255)]
    rules = cfg["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 195, "minor": 1, "access": "rwm"} in rules
    env = cfg["process"]["env"]
    assert "NVIDIA_VISIBLE_DEVICES=0,1" in env and "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in env
    hook = cfg["hooks"]["createRuntime"][0]
    assert hook["path"] == sys.executable
    assert hook["args"][1:] == ["-m", "forklift.runtime.gpuhook", "--cli", "/opt/nvidia-container-cli",
                                "--devices", "0,1"]


def test_gpu_spec_uses_real_device_numbers_and_no_hook_without_the_cli(rootfs, tmp_path, monkeypatch):
    dev = tmp_path / "dev"
    dev.mkdir()
    os.mknod(dev / "nvidia0", 0o600 | stat.S_IFCHR, os.makedev(195, 7))
    os.mknod(dev / "nvidia-uvm", 0o600 | stat.S_IFCHR, os.makedev(509, 0))
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-container-cli
    cfg = ocispec.build_config(make(rootfs, gpu_count=1), Path("/merged"), netns_path="/n", dev=dev)
    assert [(d["major"], d["minor"]) for d in cfg["linux"]["devices"]] == [(195, 7), (195, 255), (509, 0)]
    assert "hooks" not in cfg
    assert "devices" not in ocispec.build_config(make(rootfs), Path("/m"), netns_path="/n")["linux"]


def test_gpu_hook_calls_nvidia_container_cli(tmp_path, monkeypatch):
    record = tmp_path / "argv"
    cli = tmp_path / "fake-cli"
    cli.write_text(f"#!/bin/sh\necho \"$@\" > {record}\n")
    cli.chmod(0o755)
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    (bundle_dir / "config.json").write_text(json.dumps({"root": {"path": "rootfs"}}))
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"pid": 4242, "bundle": str(bundle_dir)})))
    assert gpuhook.main(["--cli", str(cli), "--devices", "0,1"]) == 0
    assert record.read_text().split() == ["--load-kmods", "configure", "--device=0,1", "--compute", "--utility",
                                          "--pid=4242", str(bundle_dir / "rootfs")]

"""The seccomp profile's data and the image-user lookup, without running anything."""

from __future__ import annotations

import errno
import os

import pytest

from forklift.runtime import SpecError, seccomp, users


def rules_for(profile: dict, name: str) -> list[dict]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def test_default_action_is_eperm_on_every_architecture_of_the_machine():
    for machine, arches in (("x86_64", ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
                            ("aarch64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
                            ("arm64", ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])):
        profile = seccomp.default_profile(machine, "6.1.0")
        assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == errno.EPERM
        assert profile["architectures"] == arches
    with pytest.raises(ValueError, match="riscv64"):
        seccomp.default_profile("riscv64")


def test_what_start_up_of_libc_python_and_runc_needs_is_allowed():
    allowed = set(seccomp.allowed_names("x86_64", "6.1.0"))
    for name in ("execve", "rseq", "statx", "faccessat2", "epoll_pwait2", "close_range", "openat2", "membarrier",
                 "pipe2", "arch_prctl", "set_robust_list", "futex", "getrandom", "prlimit64", "chroot"):
        assert name in allowed, name
    assert "arch_prctl" not in seccomp.allowed_names("aarch64", "6.1.0")
    assert "set_tls" in seccomp.allowed_names("aarch64", "6.1.0")


def test_refused_calls_are_never_allowed():
    for machine in seccomp.ARCHITECTURES:
        profile = seccomp.default_profile(machine, "6.1.0")
        allowed = {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
        assert not allowed & set(seccomp.REFUSED), allowed & set(seccomp.REFUSED)
        assert not {"unshare", "setns", "mount", "io_uring_setup", "keyctl", "bpf"} - set(seccomp.REFUSED)


def test_clone_only_without_namespace_flags_and_clone3_answers_enosys():
    profile = seccomp.default_profile("x86_64", "6.1.0")
    (clone,) = rules_for(profile, "clone")
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    (clone3,) = rules_for(profile, "clone3")
    assert clone3 == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}


def test_personality_and_socket_are_argument_checked():
    profile = seccomp.default_profile("x86_64", "6.1.0")
    values = sorted(r["args"][0]["value"] for r in rules_for(profile, "personality"))
    assert values == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    (sock,) = rules_for(profile, "socket")
    assert sock["args"] == [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]  # no AF_VSOCK


def test_tracing_only_where_seccomp_cannot_be_bypassed_by_it():
    assert "ptrace" in seccomp.allowed_names("x86_64", "4.8.0-1-amd64")
    assert "ptrace" not in seccomp.allowed_names("x86_64", "4.4.0")


# -- the image's user, from a hostile image ------------------------------------------------------
@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nbroken line\nodd:x:-1:x::/:/bin/sh\n"
                                     "huge:x:99999999999:0::/:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (root / "etc/group").write_text("app:x:1000:\nstaff:x:50:app\nbad:x:nope:app\n")
    return root


def test_malformed_lines_are_skipped(rootfs):
    assert users.resolve(rootfs, "app") == users.ImageUser(1000, 1000, (50,), "/home/app", "app")
    for name in ("broken line", "odd", "huge"):
        with pytest.raises(SpecError, match="not in the image's /etc/passwd"):
            users.resolve(rootfs, name)


def test_ids_out_of_range_are_refused(rootfs):
    with pytest.raises(SpecError, match="uid 4294967295 is out of range"):
        users.resolve(rootfs, "4294967295")
    with pytest.raises(SpecError, match="gid 99999999999 is out of range"):
        users.resolve(rootfs, "1000:99999999999")
    assert users.resolve(rootfs, "4294967294:7").oci() == {"uid": 4294967294, "gid": 7}


def test_a_uid_the_image_does_not_list_runs_with_gid_0_and_home_slash(rootfs):
    assert users.resolve(rootfs, "4321") == users.ImageUser(4321, 0, (), "/", None)
    assert users.resolve(rootfs, None).is_root


def test_a_huge_passwd_is_refused(rootfs):
    with open(rootfs / "etc/passwd", "wb") as f:
        f.truncate(users.MAX_DATABASE_BYTES + 1)
    with pytest.raises(SpecError, match="larger than"):
        users.resolve(rootfs, "app")


def test_a_fifo_or_directory_passwd_is_refused_without_blocking(rootfs):
    (rootfs / "etc/passwd").unlink()
    os.mkfifo(rootfs / "etc/passwd")
    with pytest.raises(SpecError, match="not a regular file"):
        users.resolve(rootfs, "app")


def test_symlinks_resolve_inside_the_rootfs_only(rootfs, tmp_path):
    (rootfs / "usr/share").mkdir(parents=True)
    (rootfs / "etc/passwd").rename(rootfs / "usr/share/passwd")
    (rootfs / "etc/passwd").symlink_to("/usr/share/passwd")  # absolute: the image's root, not the host's
    assert users.resolve(rootfs, "app").uid == 1000
    (rootfs / "etc/passwd").unlink()
    (rootfs / "etc/passwd").symlink_to("../../../../../../../../etc/passwd")  # ".." stops at the image's root
    (rootfs / "usr/share/passwd").rename(rootfs / "etc/real")
    with pytest.raises(SpecError, match="too many levels"):
        users.resolve(rootfs, "app")  # resolves to itself, never to the host's /etc/passwd
    (rootfs / "etc/passwd").unlink()
    outside = tmp_path / "outside"
    outside.write_text("app:x:0:0::/:/bin/sh\n")
    (rootfs / "etc/passwd").symlink_to(outside)
    with pytest.raises(SpecError, match="not in the image's"):
        users.resolve(rootfs, "app")  # the host path does not exist inside the image

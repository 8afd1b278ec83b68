"""Docker's default confinement, checked from inside real runc containers (root only): each item is
read from /proc/self/status and then tried."""

from __future__ import annotations

import json
import textwrap

import pytest

from forklift.runtime import SpecError, ocispec

# CAP_CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6, SETUID 7, SETPCAP 8,
# NET_BIND_SERVICE 10, NET_RAW 13, SYS_CHROOT 18, MKNOD 27, AUDIT_WRITE 29, SETFCAP 31: docker's set.
DOCKER_CAPS = "00000000a80425fb"


def run(runtime, rootfs, script: str, **kw) -> tuple[int, list[str]]:
    handle = runtime.start(runtime.spec(rootfs, entrypoint=["/bin/sh", "-c"], args=[script], **kw))
    status = handle.wait(30)
    assert status is not None, "container did not finish"
    lines = list(handle.logs())
    handle.stop(grace=1.0)
    return status.code, lines


def status_fields(lines: list[str]) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines) if v}


def test_seccomp_filter_and_no_new_privileges(runtime, busybox_rootfs):
    code, lines = run(runtime, busybox_rootfs, "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status")
    assert code == 0
    assert status_fields(lines) == {"Seccomp": "2", "NoNewPrivs": "1"}


def test_root_holds_dockers_capabilities_and_no_more(runtime, busybox_rootfs):
    code, lines = run(runtime, busybox_rootfs, "grep -E '^Cap(Eff|Prm|Bnd|Amb):' /proc/self/status")
    assert code == 0
    assert status_fields(lines) == {"CapEff": DOCKER_CAPS, "CapPrm": DOCKER_CAPS, "CapBnd": DOCKER_CAPS,
                                    "CapAmb": "0000000000000000"}


def test_a_non_root_user_holds_no_capabilities(runtime, busybox_rootfs):
    code, lines = run(runtime, busybox_rootfs, "grep -E '^(Cap(Eff|Prm|Bnd|Amb|Inh)|NoNewPrivs):' /proc/self/status",
                      image_config={"User": "1000:1000"})
    assert code == 0
    zero = "0000000000000000"
    assert status_fields(lines) == {"CapEff": zero, "CapPrm": zero, "CapInh": zero, "CapAmb": zero,
                                    "CapBnd": DOCKER_CAPS, "NoNewPrivs": "1"}


@pytest.mark.parametrize("command", ["unshare -U -r true", "unshare -U true", "unshare -m true", "unshare -n true"])
def test_no_new_namespaces_not_even_a_user_namespace(runtime, busybox_rootfs, command):
    for user in (None, "1000:1000"):
        code, lines = run(runtime, busybox_rootfs, f"{command} && echo ESCAPED; echo rc=$?",
                          image_config={"User": user} if user else {})
        assert "ESCAPED" not in lines, (command, user, lines)
        assert any("Operation not permitted" in line for line in lines), lines


def test_mounting_is_refused_even_to_root(runtime, busybox_rootfs):
    code, lines = run(runtime, busybox_rootfs,
                      "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m && echo MOUNTED; "
                      "mount -o remount,rw /sys && echo REMOUNTED; umount /proc/kcore && echo UNMASKED; true")
    assert not {"MOUNTED", "REMOUNTED", "UNMASKED"} & set(lines), lines


def test_masked_paths_read_empty_and_readonly_paths_refuse_writes(runtime, busybox_rootfs):
    script = textwrap.dedent("""\
        echo "kcore=$(head -c 64 /proc/kcore 2>/dev/null | wc -c)"
        echo "interrupts=$(wc -c < /proc/interrupts)"
        echo "keys=$(wc -c < /proc/keys)"
        echo 1 > /proc/sys/vm/drop_caches && echo WROTE-SYS
        echo h > /proc/sysrq-trigger && echo WROTE-SYSRQ
        echo x > /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null && echo WROTE-SYSFS
        true
    """)
    code, lines = run(runtime, busybox_rootfs, script)
    assert {"kcore=0", "interrupts=0", "keys=0"} <= set(lines), lines
    assert not [line for line in lines if line.startswith("WROTE")], lines
    assert any("Read-only file system" in line for line in lines), lines


def test_the_images_numeric_user_is_honoured(runtime, busybox_rootfs):
    code, lines = run(runtime, busybox_rootfs, 'id -u; id -g; echo "HOME=$HOME"; touch /x 2>/dev/null || echo no-root',
                      image_config={"User": "1000:1000"})
    assert lines == ["1000", "1000", "HOME=/home/app", "no-root"]


def test_the_images_named_user_and_group_are_resolved_in_its_passwd(runtime, busybox_rootfs):
    code, lines = run(runtime, busybox_rootfs, 'id -u; id -g; id -G; echo "HOME=$HOME"',
                      image_config={"User": "app:extra"})
    assert lines == ["1000", "2000", "2000", "HOME=/home/app"]
    code, lines = run(runtime, busybox_rootfs, "id -u", image_config={"User": "app"}, user="0")
    assert lines == ["0"]  # the spec's user overrides the image's


def test_a_user_the_image_does_not_have_is_refused_clearly(runtime, busybox_rootfs):
    with pytest.raises(SpecError, match="'nobody' is not in the image's /etc/passwd"):
        runtime.start(runtime.spec(busybox_rootfs, entrypoint=["true"], image_config={"User": "nobody"}))


PROBE = textwrap.dedent("""\
    import ctypes, errno, json, os, socket, subprocess, sys, threading
    libc = ctypes.CDLL(None, use_errno=True)
    def call(nr, *args):
        ctypes.set_errno(0)
        rc = libc.syscall(nr, *args)
        return "ok" if rc >= 0 else errno.errorcode[ctypes.get_errno()]
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("thread", "ok")); t.start(); t.join()
    out["subprocess"] = subprocess.run(["/bin/echo", "hi"], capture_output=True, text=True).stdout.strip()
    out["stat"] = "ok" if os.stat("/") else "no"
    a, b = socket.socketpair(); a.send(b"x"); out["socketpair"] = b.recv(1).decode()
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); out["listen"] = "ok"
    # x86-64 numbers: clone3 435, unshare 272, io_uring_setup 425, keyctl 250, bpf 321, userfaultfd 323
    out["clone3"] = call(435, 0, 0)
    out["unshare_user"] = call(272, 0x10000000)
    out["io_uring_setup"] = call(425, 1, 0)
    out["keyctl"] = call(250, 0, 0)
    out["bpf"] = call(321, 0, 0, 0)
    out["userfaultfd"] = call(323, 0)
    print(json.dumps(out, sort_keys=True))
""")


def test_python_runs_under_the_filter_and_the_refused_calls_fail(runtime, pyslim_rootfs):
    if ocispec.seccomp.platform.machine() != "x86_64":
        pytest.skip("the probe uses x86-64 syscall numbers")
    handle = runtime.start(runtime.spec(pyslim_rootfs, entrypoint=["python3", "-c", PROBE],
                                        image_config={"User": "app"}))
    status = handle.wait(60)
    lines = list(handle.logs())
    handle.stop(grace=1.0)
    assert status is not None and status.code == 0, lines
    assert json.loads(lines[-1]) == {
        "thread": "ok", "subprocess": "hi", "stat": "ok", "socketpair": "x", "listen": "ok",
        "clone3": "ENOSYS", "unshare_user": "EPERM", "io_uring_setup": "EPERM", "keyctl": "EPERM",
        "bpf": "EPERM", "userfaultfd": "EPERM"}

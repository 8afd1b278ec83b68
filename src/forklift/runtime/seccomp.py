"""The seccomp filter every container runs under: docker's default confinement, as forklift's own data.

What is allowed is an allowlist; everything else fails with EPERM, as under docker. The groups
below say why each family is there. The kernel interfaces docker opens only to containers holding
CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_TIME, ... are left out altogether, since forklift never
grants those capabilities (see ocispec.DEFAULT_CAPABILITIES); the one conditional family it does
grant, CAP_SYS_CHROOT, brings `chroot`.

Syscall names newer than the host's libseccomp are skipped by runc, and syscalls newer than
libseccomp answer ENOSYS (not EPERM), so a new libc falls back to an older call instead of failing.
"""

from __future__ import annotations

import errno
import os
import platform

# -- what a process may do -------------------------------------------------------------------
ALLOWED: dict[str, tuple[str, ...]] = {
    # Running a program at all: exec, exit, memory, the dynamic loader's and libc's start-up
    # (rseq and set_robust_list from glibc >= 2.35, membarrier from JITs and liburcu).
    "process life": (
        "execve", "execveat", "exit", "exit_group", "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect",
        "madvise", "mincore", "msync", "mlock", "mlock2", "mlockall", "munlock", "munlockall",
        "remap_file_pages", "pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack",
        "set_tid_address", "set_robust_list", "get_robust_list", "set_thread_area", "get_thread_area", "rseq",
        "membarrier", "restart_syscall",
    ),
    # Children and threads: fork/vfork (posix_spawn), wait, and clone (without namespace flags:
    # see default_profile); clone3 is answered ENOSYS below so libc falls back to clone.
    "processes and threads": (
        "fork", "vfork", "wait4", "waitid", "waitpid", "kill", "tkill", "tgkill", "pidfd_open",
        "pidfd_send_signal", "process_mrelease", "getpid", "getppid", "gettid", "getpgid", "setpgid",
        "getpgrp", "getsid", "setsid", "prctl", "seccomp", "capget", "capset", "getrusage", "times",
        "getrlimit", "setrlimit", "ugetrlimit", "prlimit64", "getpriority", "setpriority",
        "ioprio_get", "ioprio_set",
    ),
    # Identity: dropping to another user is how servers shed root; with no CAP_SETUID in the
    # effective set (any non-root user) the kernel refuses changes anyway.
    "credentials": (
        "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
        "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
        "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32",
        "setresuid", "setresuid32", "setresgid", "setresgid32", "setfsuid", "setfsuid32", "setfsgid",
        "setfsgid32", "setgroups", "setgroups32",
    ),
    # Scheduling: thread pools (OpenMP, BLAS) pin and query CPUs.
    "scheduling": (
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr",
        "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
        "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
        "sched_rr_get_interval_time64", "getcpu",
    ),
    # Signals and timers.
    "signals": (
        "rt_sigaction", "rt_sigprocmask", "rt_sigpending", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
        "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "sigaltstack",
        "sigprocmask", "sigreturn", "signalfd", "signalfd4", "pause", "alarm",
    ),
    "time": (
        "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64", "clock_nanosleep",
        "clock_nanosleep_time64", "nanosleep", "gettimeofday", "time", "getitimer", "setitimer",
        "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
        "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
        "timerfd_settime", "timerfd_settime64",
        # Reading the clock's adjustment is harmless; setting it needs CAP_SYS_TIME, which is never given.
        "adjtimex", "clock_adjtime", "clock_adjtime64",
    ),
    # Files: the classic calls and their *at/2 successors (statx and faccessat2 from glibc >= 2.33,
    # openat2, close_range from Python's subprocess), extended attributes, locks.
    "files": (
        "open", "openat", "openat2", "creat", "close", "close_range", "read", "readv", "pread64", "preadv",
        "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2", "lseek", "_llseek", "dup", "dup2",
        "dup3", "pipe", "pipe2", "fcntl", "fcntl64", "ioctl", "flock", "fsync", "fdatasync", "sync", "syncfs",
        "sync_file_range", "fallocate", "fadvise64", "fadvise64_64", "readahead", "truncate", "truncate64",
        "ftruncate", "ftruncate64", "sendfile", "sendfile64", "copy_file_range", "splice", "tee", "vmsplice",
        "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx",
        "statfs", "statfs64", "fstatfs", "fstatfs64", "access", "faccessat", "faccessat2",
        "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "rename",
        "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "readlink",
        "readlinkat", "mknod", "mknodat", "umask", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
        "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32", "utime", "utimes", "utimensat",
        "utimensat_time64", "futimesat", "getxattr", "lgetxattr", "fgetxattr",
        "setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr",
        "lremovexattr", "fremovexattr", "memfd_create", "memfd_secret", "cachestat",
    ),
    # Waiting for I/O, and legacy Linux AIO (io_uring is not here: docker removed it from its default
    # profile after a run of kernel exploits through it, and forklift follows).
    "event loops and aio": (
        "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old",
        "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "inotify_init", "inotify_init1",
        "inotify_add_watch", "inotify_rm_watch", "fanotify_mark", "io_setup", "io_destroy", "io_submit",
        "io_cancel", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    ),
    # Threads synchronise with futexes; processes share memory through SysV IPC and POSIX queues,
    # which live in the container's own IPC namespace.
    "synchronisation and ipc": (
        "futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue",
        "ipc", "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semtimedop_time64",
        "semctl", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_notify",
        "mq_getsetattr", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
    ),
    # Sockets (socket itself is below: every family but AF_VSOCK). 32-bit x86 code reaches socket(2)
    # through socketcall, whose arguments a filter cannot see: AF_VSOCK stays open to it, as under docker.
    "network": (
        "socketpair", "socketcall", "bind", "listen", "accept", "accept4", "connect", "getsockname",
        "getpeername", "getsockopt", "setsockopt", "shutdown", "send", "sendto", "sendmsg", "sendmmsg",
        "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
    ),
    # The machine as a process sees it; landlock lets a program confine itself further.
    "system information and self-confinement": (
        "uname", "sysinfo", "getrandom", "landlock_create_ruleset", "landlock_add_rule",
        "landlock_restrict_self",
    ),
    # CAP_SYS_CHROOT is in forklift's (docker's) default capability set, so chroot goes with it.
    "granted capabilities": ("chroot",),
}

# Debugging and profiling (gdb, strace, py-spy) trace processes. Before Linux 4.8 a tracer could
# rewrite a traced syscall after seccomp had approved it, so ptrace escaped the filter; since 4.8
# seccomp re-checks after the tracer, and without CAP_SYS_PTRACE the kernel still limits tracing
# to the container's own pid namespace and same-uid processes. Like docker: allowed from 4.8 on.
TRACING = ("ptrace", "process_vm_readv", "process_vm_writev")
TRACING_MIN_KERNEL = (4, 8)

# Per machine: the seccomp architectures a process may enter the kernel through (a 64-bit
# container can run 32-bit code), and the calls only that machine has.
ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}
MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}
MACHINE_SPECIFIC = {
    "x86_64": ("arch_prctl", "modify_ldt"),  # TLS set-up by every x86-64 libc; modify_ldt for wine/32-bit
    "aarch64": ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
                "set_tls"),
}

# Never allowed (documentation, and what tests check against: the default action refuses them).
# They reach the kernel's most exposed surfaces or undo the container's namespaces.
REFUSED = (
    "unshare", "setns",  # new or foreign namespaces: user namespaces above all
    "mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr",  # the mount table
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key",  # the kernel keyring is not namespaced
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
    "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "lookup_dcookie", "open_by_handle_at",
    "name_to_handle_at",  # docker allows it with CAP_SYS_ADMIN only, which forklift never grants
    "sethostname", "setdomainname", "settimeofday", "clock_settime", "clock_settime64", "stime",
    "iopl", "ioperm", "vhangup", "kcmp", "pidfd_getfd", "process_madvise", "fanotify_init",
    "get_mempolicy", "set_mempolicy", "mbind", "set_mempolicy_home_node", "move_pages", "migrate_pages",
    "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "vm86", "vm86old", "create_module",
    "get_kernel_syms", "query_module",
)

# clone without a namespace flag: CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
CLONE_NAMESPACE_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
                         | 0x40000000)
AF_VSOCK = 40  # host<->guest sockets: a path out of the container's network namespace
# personality(2): plain Linux, PER_LINUX32 (32-bit uname), UNAME26, both, and 0xffffffff (query).
# Others (e.g. ADDR_NO_RANDOMIZE) would weaken the process's own hardening.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)


def _machine(machine: str | None) -> str:
    name = (machine or platform.machine()).lower()
    name = MACHINE_ALIASES.get(name, name)
    if name not in ARCHITECTURES:
        raise ValueError(f"no seccomp profile for machine {name!r}: one of {', '.join(ARCHITECTURES)}")
    return name


def _kernel_at_least(release: str, wanted: tuple[int, int]) -> bool:
    parts = []
    for piece in release.split("-")[0].split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= wanted


def allowed_names(machine: str | None = None, kernel: str | None = None) -> list[str]:
    """Every syscall allowed without conditions on `machine` (default: this one)."""
    name = _machine(machine)
    names = [n for group in ALLOWED.values() for n in group] + list(MACHINE_SPECIFIC[name])
    if _kernel_at_least(kernel or os.uname().release, TRACING_MIN_KERNEL):
        names += TRACING
    return sorted(set(names))


def default_profile(machine: str | None = None, kernel: str | None = None) -> dict:
    """The OCI `linux.seccomp` object for `machine` and `kernel` (default: this host's)."""
    allow = "SCMP_ACT_ALLOW"
    rules: list[dict] = [{"names": allowed_names(machine, kernel), "action": allow}]
    rules.append({"names": ["socket"], "action": allow,
                  "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]})
    # One rule per value: seccomp ANDs the conditions of a rule, and the rules OR.
    rules += [{"names": ["personality"], "action": allow, "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]}
              for v in PERSONALITIES]
    rules.append({"names": ["clone"], "action": allow,
                  "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]})
    # clone3 passes its flags in memory, where seccomp cannot look: refuse it as "not implemented"
    # so glibc and musl retry with clone, whose flags the rule above checks.
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EPERM,
            "architectures": list(ARCHITECTURES[_machine(machine)]), "syscalls": rules}

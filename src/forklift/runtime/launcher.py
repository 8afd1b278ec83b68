"""The first milliseconds of a container's supervisor: start the container with only the lightest
standard-library modules loaded, tell the server it runs, then hand over to `supervisor`.

    python -S launcher.py STATE_DIR READY_FD RUNC RUNC_ROOT|- CONTAINER_ID

Importing json, subprocess, dataclasses and the runtime modules costs the supervisor about 50 ms on
this kind of machine; with this split a container's start waits for none of it. The child subreaper
is set before runc runs, so the container's init is reaped here whatever happens next.
"""

import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def _start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[19])


def _write_atomic(path: str, text: str) -> None:
    # not forklift's own helper: this process starts with the standard library alone (see above)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def _run(argv: list[str], stdout: str, stderr: str) -> int:
    """Run argv with stdin from /dev/null and output appended to the files; its exit code."""
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 1)
            os.dup2(os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 2)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    state_dir, ready_fd, runc, runc_root, container_id = argv
    ready = int(ready_fd)
    _write_atomic(f"{state_dir}/supervisor.json",
                  f'{{"pid": {os.getpid()}, "start_time": {_start_time(os.getpid())}}}')
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    command = [runc, *(["--root", runc_root] if runc_root != "-" else []),
               "--log", f"{state_dir}/runc.log", "--log-format", "json",
               "run", "--detach", "--bundle", state_dir, "--pid-file", f"{state_dir}/pid", container_id]
    code = _run(command, f"{state_dir}/stdout.log", f"{state_dir}/stderr.log")
    if code != 0:
        from forklift.runtime.supervisor import Supervisor

        Supervisor(state_dir, ready).fail_to_start(code)
        return 0
    with open(f"{state_dir}/pid") as pid_file:
        pid = int(pid_file.read())
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))  # pass a shutdown on
    try:
        os.write(ready, b'{"ok": true, "pid": %d}\n' % pid)
    except OSError:
        pass  # the server went away; nobody is waiting
    os.close(ready)

    from forklift.runtime.supervisor import Supervisor  # the heavy part, once the container runs

    Supervisor(state_dir, None).supervise(pid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

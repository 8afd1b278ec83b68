"""The user a container runs as: "uid[:gid]" or "name[:group]", looked up in the image's own
/etc/passwd and /etc/group, as docker does.

The image is untrusted, so its files are read with care: symlinks are followed inside the rootfs
only (an absolute link is relative to the image's root, never the host's), only regular files
are read (a FIFO would block, a device would read the host), at most `MAX_DATABASE_BYTES` of them,
and malformed lines are skipped, not trusted.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from forklift.runtime.spec import ContainerSpec, SpecError

MAX_DATABASE_BYTES = 4 * 1024 * 1024  # far above any real image's /etc/passwd or /etc/group
MAX_ID = 2**32 - 2  # (uid_t)-1 is "leave unchanged" to the kernel, never an identity
MAX_SYMLINKS = 40  # the kernel's own limit on links followed in one lookup


@dataclass(frozen=True)
class ImageUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"  # docker's HOME for a uid the image does not list
    name: str | None = None

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def oci(self) -> dict:
        """OCI process.user."""
        out: dict = {"uid": self.uid, "gid": self.gid}
        if self.additional_gids:
            out["additionalGids"] = list(self.additional_gids)
        return out


def _open_in_root(root_fd: int, relpath: str) -> int | None:
    """An O_RDONLY fd on `relpath` resolved with `root_fd` as "/", or None when it is missing.

    Each component is opened with O_NOFOLLOW relative to the directory before it; a symlink is
    read and resolved again from the root (absolute) or its directory (relative), and ".." never
    climbs above the root. Python has no openat2(RESOLVE_IN_ROOT), so this is done by hand.
    """
    todo = [p for p in relpath.split("/") if p]
    stack: list[int] = [os.dup(root_fd)]  # the directories walked through, root first
    links = 0
    try:
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            last = not todo
            try:
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise SpecError(f"the image's /{relpath} has too many levels of symbolic links")
                target = os.readlink(part, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo = [p for p in target.split("/") if p] + todo
                continue
            if last:
                if not stat.S_ISREG(st.st_mode):
                    raise SpecError(f"the image's /{relpath} is not a regular file")
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
                return os.open(part, flags, dir_fd=stack[-1])
            if not stat.S_ISDIR(st.st_mode):
                return None
            stack.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 dir_fd=stack[-1]))
        return None  # the path named the root itself
    finally:
        for fd in stack:
            os.close(fd)


def read_database(rootfs: Path, relpath: str) -> list[list[str]]:
    """The colon-separated entries of an /etc file of the image; [] when it has none."""
    try:
        root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise SpecError(f"the image's root filesystem {rootfs} cannot be opened: {exc.strerror}") from None
    try:
        fd = _open_in_root(root_fd, relpath)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return []
        raise SpecError(f"the image's /{relpath} cannot be read: {exc.strerror}") from None
    finally:
        os.close(root_fd)
    if fd is None:
        return []
    with os.fdopen(fd, "rb") as f:
        if os.fstat(f.fileno()).st_size > MAX_DATABASE_BYTES:
            raise SpecError(f"the image's /{relpath} is larger than {MAX_DATABASE_BYTES // (1024 * 1024)} MiB")
        data = f.read(MAX_DATABASE_BYTES + 1)
    if len(data) > MAX_DATABASE_BYTES:
        raise SpecError(f"the image's /{relpath} is larger than {MAX_DATABASE_BYTES // (1024 * 1024)} MiB")
    text = data.decode("utf-8", errors="replace")
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _numeric_id(text: str, what: str) -> int:
    value = int(text)
    if value > MAX_ID:
        raise SpecError(f"{what} {text} is out of range: ids go from 0 to {MAX_ID}")
    return value


def _valid_id(text: str) -> int | None:
    """An id field of an /etc entry, or None when it is not a usable number."""
    if not text.isascii() or not text.isdigit() or int(text) > MAX_ID:
        return None
    return int(text)


def resolve(rootfs: Path, user: str | None) -> ImageUser:
    """The user for a spec or image `User` value; root when it is empty (docker's default)."""
    user = (user or "").strip()
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    if not name:
        raise SpecError(f"user {user!r} names no user: use uid[:gid] or name[:group]")
    numeric = name.isascii() and name.isdigit()
    uid = _numeric_id(name, "uid") if numeric else None
    found = None
    for entry in read_database(rootfs, "etc/passwd"):
        if len(entry) < 7:
            continue  # a malformed line is not an entry
        entry_uid, entry_gid = _valid_id(entry[2]), _valid_id(entry[3])
        if entry_uid is None or entry_gid is None:
            continue
        if (numeric and entry_uid == uid) or (not numeric and entry[0] == name):
            found = ImageUser(entry_uid, entry_gid, home=entry[5] or "/", name=entry[0])
            break
    if found is None:
        if not numeric:
            raise SpecError(f"user {name!r} is not in the image's /etc/passwd: use a numeric uid[:gid] "
                            "or a user the image defines")
        assert uid is not None
        found = ImageUser(uid, 0)  # docker: a uid the image does not list runs with gid 0 and HOME=/
    gid = found.gid
    groups = [g for g in read_database(rootfs, "etc/group") if len(g) >= 4 and _valid_id(g[2]) is not None]
    if group:
        if group.isascii() and group.isdigit():
            gid = _numeric_id(group, "gid")
        else:
            match = [g for g in groups if g[0] == group]
            if not match:
                raise SpecError(f"group {group!r} is not in the image's /etc/group: use a numeric gid "
                                "or a group the image defines")
            gid = int(match[0][2])
    extra: set[int] = set()
    if found.name:
        extra = {int(g[2]) for g in groups if found.name in g[3].split(",")}
    return ImageUser(found.uid, gid, tuple(sorted(extra - {gid})), found.home, found.name)


def spec_user(spec_value: str | None, image_config: dict) -> str | None:
    """What a container runs as: the spec's user when it gives one, else the image's `User`."""
    return spec_value or (image_config.get("User") or None)


def image_user(spec: ContainerSpec) -> ImageUser:
    """Who `spec`'s process runs as; a SpecError naming the user when the image cannot supply it."""
    return resolve(spec.rootfs, spec_user(spec.user, spec.image_config))


def hand_over(paths: list[Path], user: ImageUser) -> None:
    """Make the platform's own per-container directories (never a user's bind mount) the container
    user's, so that a non-root image can write its outputs there; nothing becomes world-writable."""
    if user.is_root:
        return
    for path in paths:
        os.chown(path, user.uid, user.gid, follow_symlinks=False)


def hand_over_tree(root: Path, user: ImageUser) -> None:
    """Make a tree forklift itself wrote (an endpoint's extracted model data) the container user's, so a
    non-root model server can read files the archive made private; links are changed, never followed."""
    if user.is_root:
        return
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        os.chown(directory, user.uid, user.gid, follow_symlinks=False)
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(directory, name), user.uid, user.gid, follow_symlinks=False)

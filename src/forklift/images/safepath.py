"""Path handling that cannot leave a directory tree: lexical normalization plus openat-style walking.

Every parent component of a path is opened with `O_PATH|O_DIRECTORY|O_NOFOLLOW` relative to the
previous one, so a symlink anywhere in the tree (`evil -> /etc`) is refused instead of followed,
and entries are created with `dir_fd=` plus `follow_symlinks=False`. Nothing here resolves a
path string against the host filesystem except the root directory itself.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import OrderedDict
from typing import Self

from forklift.images.errors import ImageError

_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(ImageError, ValueError):
    """A path that would escape the root or pass through something that is not a directory.

    The message completes a sentence about the entry: "entry 'a/b' <message>".
    """


def split_path(name: str) -> tuple[str, ...]:
    """Normalize an archive path into components: leading `/` stripped, `.` dropped, `..` folded.

    `a/../b` gives `('b',)`; `../x` or `a/../../x` raise UnsafePath. `''`, `/` and `./` give `()`,
    the root itself.
    """
    parts: list[str] = []
    for comp in name.split("/"):
        if comp == "" or comp == ".":
            continue
        if comp == "..":
            if not parts:
                raise UnsafePath("escapes the root")
            parts.pop()
        else:
            parts.append(comp)
    return tuple(parts)


def is_dir_error(exc: OSError) -> bool:
    """True when an O_NOFOLLOW|O_DIRECTORY open failed because the object is a symlink or non-dir."""
    return exc.errno in (errno.ELOOP, errno.ENOTDIR)


class DirWalker:
    """Opens directories below `root` without following symlinks, with a small LRU of open fds.

    Tar members arrive grouped by directory, so the parent of the next entry is almost always
    cached and resolving it costs no syscall. Call `forget(parts)` after removing a directory.
    """

    def __init__(self, root: str | os.PathLike[str], cache_size: int = 64) -> None:
        self.root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._cache: OrderedDict[tuple[str, ...], int] = OrderedDict()
        self._cache_size = cache_size

    def close(self) -> None:
        self.invalidate()
        os.close(self.root_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def invalidate(self) -> None:
        """Forget every cached directory fd (they may now point at removed directories)."""
        while self._cache:
            os.close(self._cache.popitem()[1])

    def forget(self, parts: tuple[str, ...]) -> None:
        """Drop cached fds of `parts` and everything below it (call after removing that directory)."""
        n = len(parts)
        for key in [k for k in self._cache if k[:n] == parts]:
            os.close(self._cache.pop(key))

    def open_dir(self, parts: tuple[str, ...], create: bool = False) -> int:
        """fd (owned by the walker, O_PATH) of directory `parts` below the root.

        Missing directories are created 0755 when `create`; otherwise FileNotFoundError. A component
        that is a symlink or not a directory raises UnsafePath.
        """
        if not parts:
            return self.root_fd
        cache = self._cache
        fd = cache.get(parts)
        if fd is not None:
            cache.move_to_end(parts)
            return fd
        # Longest cached prefix, then walk the remaining components one openat at a time.
        i = len(parts) - 1
        fd = self.root_fd
        while i > 0:
            cached = cache.get(parts[:i])
            if cached is not None:
                cache.move_to_end(parts[:i])
                fd = cached
                break
            i -= 1
        for j in range(i, len(parts)):
            fd = self._open_component(fd, parts, j, create)
            cache[parts[: j + 1]] = fd
            if len(cache) > self._cache_size:
                os.close(cache.popitem(last=False)[1])
        return fd

    def _open_component(self, parent: int, parts: tuple[str, ...], j: int, create: bool) -> int:
        name = parts[j]
        try:
            return os.open(name, _PATH_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as e:
            if is_dir_error(e):
                raise UnsafePath(_not_dir_message(parent, parts, j)) from None
            raise
        try:
            os.mkdir(name, 0o755, dir_fd=parent)
            os.chmod(name, 0o755, dir_fd=parent)  # whatever the umask; it is the dir just made
        except FileExistsError:
            pass
        try:
            return os.open(name, _PATH_FLAGS, dir_fd=parent)
        except OSError as e:
            if is_dir_error(e):
                raise UnsafePath(_not_dir_message(parent, parts, j)) from None
            raise


def _not_dir_message(parent: int, parts: tuple[str, ...], j: int) -> str:
    where = "/".join(parts[: j + 1])
    try:
        st = os.lstat(parts[j], dir_fd=parent)
    except OSError:
        return f"goes through {where!r}, which is not a directory"
    if stat.S_ISLNK(st.st_mode):
        return f"goes through symlink {where!r} (symlinks are never followed)"
    return f"goes through {where!r}, which is not a directory"


def remove_at(dir_fd: int, name: str) -> bool:
    """Remove `name` in `dir_fd` whatever it is, never following symlinks; True if it was a directory.

    A missing entry is not an error.
    """
    try:
        os.unlink(name, dir_fd=dir_fd)
        return False
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        pass
    except PermissionError:
        # Linux answers EISDIR for directories, but some filesystems answer EPERM.
        st = os.lstat(name, dir_fd=dir_fd)
        if not stat.S_ISDIR(st.st_mode):
            raise
    try:
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based, symlink-attack resistant (3.11+)
    except RecursionError:
        raise OSError(errno.ELOOP, "directory tree too deep to remove", name) from None
    return True


def open_dir_fd(dir_fd: int, name: str) -> int | None:
    """O_RDONLY fd of directory `name` (no symlink follow), or None if it is missing or not a dir."""
    try:
        return os.open(name, _READ_DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if is_dir_error(e):
            return None
        raise

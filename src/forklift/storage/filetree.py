"""Objects kept as plain files under a root directory: the engine of the embedded and file:// stores.

Keys are "/"-separated paths relative to the root. A `contained` tree (an embedded bucket) also
guarantees that no key reaches outside the root: `..`, `.` and empty components are refused, symlinks
are neither listed nor followed out of the root, and empty directories left by a delete are removed
because S3 has no directories.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from forklift.storage.atomic import TEMP_PREFIX, copy_file
from forklift.storage.errors import StorageError, UnsafeKey
from forklift.storage.uri import key_parts


class KeyConflict(StorageError):
    """A key that cannot be a file because another key already uses its path as a file or directory."""


class FileTree:
    def __init__(self, root: Path, *, contained: bool) -> None:
        self.root = Path(root)
        self.contained = contained

    # --- paths -------------------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        if not self.contained:
            return self.root / key
        path = self.root.joinpath(*key_parts(key))
        self._check_inside(path, key)
        return path

    def _check_inside(self, path: Path, key: str) -> None:
        # Lexically safe keys can still leave through a symlinked directory somebody placed in the
        # bucket. The last component itself is never followed: reads open it O_NOFOLLOW and
        # writes rename over it, which replaces a symlink instead of writing through it.
        root = os.path.realpath(self.root)
        parent = os.path.realpath(path.parent)
        if parent != root and not parent.startswith(root + os.sep):
            raise UnsafeKey(f"key {key!r} resolves outside its bucket directory")

    def _start_dir(self, prefix: str) -> tuple[Path, str]:
        """The directory a prefix listing starts in, and the name filter for its top level."""
        dir_part, _, name_start = prefix.rpartition("/")
        if not dir_part:
            return self.root, name_start
        if self.contained:
            key_parts(dir_part, what="prefix")
        return self.root / dir_part, name_start

    # --- reads -------------------------------------------------------------------------------------

    def list(self, prefix: str) -> list[tuple[str, os.stat_result]]:
        """(key, stat) of every file whose key starts with prefix, sorted by key."""
        start, name_start = self._start_dir(prefix)
        if not start.is_dir() or (self.contained and start != self.root and self._is_outside(start)):
            return []
        found: list[tuple[str, os.stat_result]] = []
        top = True
        for dirpath, dirnames, filenames in os.walk(start):
            if top:  # only the first level needs the partial-name filter; everything below matches
                dirnames[:] = [d for d in dirnames if d.startswith(name_start)]
                filenames = [f for f in filenames if f.startswith(name_start)]
                top = False
            if self.contained:
                dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                path = os.path.join(dirpath, name)
                st = _lstat_or_none(path) if self.contained else _stat_or_none(path)
                if st is None or not _is_regular(st):
                    continue  # symlinks in a bucket, sockets, fifos, dangling links: not objects
                found.append((Path(path).relative_to(self.root).as_posix(), st))
        found.sort(key=lambda item: item[0])
        return found

    def _is_outside(self, path: Path) -> bool:
        return not os.path.realpath(path).startswith(os.path.realpath(self.root) + os.sep)

    def stat(self, key: str) -> os.stat_result | None:
        """The stat of the object file, or None when there is no regular file (a bucket symlink is none)."""
        path = str(self.path_for(key))
        st = _lstat_or_none(path) if self.contained else _stat_or_none(path)
        return st if st is not None and _is_regular(st) else None

    def open(self, key: str) -> BinaryIO:
        flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_NOFOLLOW if self.contained else 0)
        return os.fdopen(os.open(self.path_for(key), flags), "rb")

    # --- writes ------------------------------------------------------------------------------------

    def write_file(self, key: str, src: Path) -> None:
        dest = self.path_for(key)
        try:
            copy_file(src, dest)
        except (NotADirectoryError, FileExistsError):
            raise KeyConflict(f"cannot store key {key!r}: a parent of it is already stored as an object") from None
        except IsADirectoryError:
            raise KeyConflict(f"cannot store key {key!r}: other keys already use it as a prefix directory") from None

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        if self.contained:
            self._prune_empty_parents(path.parent)

    def _prune_empty_parents(self, directory: Path) -> None:
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                return
            directory = directory.parent


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _lstat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _is_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)


def modified(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, tz=UTC)

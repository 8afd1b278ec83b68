"""`file://` for the server: host files under the configured roots, reached without following symlinks.

Every operation starts from the root's directory and opens each component below it with
`O_NOFOLLOW` relative to the previous one (`openat`), so the file read or written is the one under
the root at that moment, whatever was checked before: a symlink found on the way is refused, never
followed. Listings walk with `os.fwalk`, which does the same for the directories it enters.
Semantics are those of `LocalFiles`: a prefix naming a directory means that directory.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from forklift.config import Settings
from forklift.storage.atomic import FILE_MODE, TEMP_PREFIX, atomic_path
from forklift.storage.base import ObjectInfo, PrefixTransfers
from forklift.storage.errors import InvalidURI, NoSuchKey, StorageError
from forklift.storage.fileroots import HostPath, locate, symlink_refused
from forklift.storage.filetree import modified
from forklift.storage.uri import parse_uri

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO someone placed under the root must not hang the server; it is refused below.
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def check_file_uri(uri: str, settings: Settings, field: str) -> None:
    """Refuse, naming `field`, a file:// URI outside the roots or through a symlink below one; any other
    scheme passes. What does not exist yet (an output path) is fine: it is created below the root."""
    loc = parse_uri(uri)
    if not loc.is_local:
        return
    try:
        host = locate(loc, settings)
        fd = _open_root(host)
        try:
            for part in host.parts:
                try:
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError):
                    return
                if stat.S_ISLNK(st.st_mode):
                    raise symlink_refused(host, part)
                if not stat.S_ISDIR(st.st_mode):
                    return
                next_fd = _step(host, fd, part)
                os.close(fd)
                fd = next_fd
        finally:
            os.close(fd)
    except StorageError as exc:
        raise type(exc)(f"{field}: {exc}") from None


class HostFiles(PrefixTransfers):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return "HostFiles()"

    def _host(self, uri: str) -> HostPath:
        loc = parse_uri(uri)
        if not loc.is_local:
            raise InvalidURI(f"{uri}: not a file:// URI")
        return locate(loc, self.settings)  # the roots as configured now, not when the job was accepted

    # --- reads -------------------------------------------------------------------------------------

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        host = self._host(prefix_uri)
        try:
            with _directory(host, host.parts) as fd:
                return _walk(host, fd, host.parts, "")
        except (NoSuchKey, NotADirectoryError):
            pass
        if not host.parts or prefix_uri.endswith("/"):  # "dir/" names a directory, and there is none
            return []
        try:
            with _directory(host, host.parts[:-1]) as fd:
                return _walk(host, fd, host.parts[:-1], host.parts[-1])
        except (NoSuchKey, NotADirectoryError):
            return []

    def open_read(self, uri: str) -> BinaryIO:
        return os.fdopen(_open_file(self._host(uri)), "rb")

    def download(self, uri: str, dest_path: Path) -> Path:
        dest_path = Path(dest_path)
        with self.open_read(uri) as src, atomic_path(dest_path) as tmp, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        return dest_path

    def exists(self, uri: str) -> bool:
        try:
            os.close(_open_file(self._host(uri)))
        except NoSuchKey:
            return False
        return True

    # --- writes ------------------------------------------------------------------------------------

    def upload(self, src_path: Path, uri: str) -> None:
        with open(src_path, "rb") as src:
            self._write(self._host(uri), src)

    def copy(self, src_uri: str, dst_uri: str) -> None:
        with self.open_read(src_uri) as src:
            self._write(self._host(dst_uri), src)

    def delete(self, uri: str) -> None:
        host = self._host(uri)
        if not host.parts:
            return
        try:
            with _directory(host, host.parts[:-1]) as fd:
                os.unlink(host.parts[-1], dir_fd=fd)  # unlink never follows the last component
        except (NoSuchKey, FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass

    @staticmethod
    def _write(host: HostPath, src: BinaryIO) -> None:
        if not host.parts:
            raise StorageError(f"{host.uri} is the file root itself, not a file in it")
        name = host.parts[-1]
        with _directory(host, host.parts[:-1], create=True) as fd:
            tmp = f"{TEMP_PREFIX}{uuid.uuid4().hex}"
            try:
                out_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 FILE_MODE, dir_fd=fd)
                with os.fdopen(out_fd, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                # rename replaces a symlink at the destination rather than writing through it
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except OSError as exc:
                with suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
                raise StorageError(f"cannot write {host.uri}: {exc.strerror or exc}") from None


def _open_root(host: HostPath) -> int:
    try:
        return os.open(host.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise StorageError(f"file root {host.root} (for {host.uri}) cannot be opened: {exc.strerror}") from None


def _step(host: HostPath, fd: int, part: str, *, create: bool = False) -> int:
    """Open `part` below the directory `fd` without following a symlink (`fd` stays the caller's)."""
    try:
        if create:
            with suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
        return os.open(part, DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        # O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR (it is not a directory), not ELOOP
        if exc.errno == errno.ELOOP or _is_symlink(fd, part):
            raise symlink_refused(host, part) from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise NoSuchKey(host.uri) from None
        raise StorageError(f"{host.uri}: {part!r} cannot be opened: {exc.strerror}") from None


def _is_symlink(fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


@contextmanager
def _directory(host: HostPath, parts: tuple[str, ...], *, create: bool = False) -> Iterator[int]:
    fd = _open_root(host)
    try:
        for part in parts:
            next_fd = _step(host, fd, part, create=create)
            os.close(fd)
            fd = next_fd
        yield fd
    finally:
        os.close(fd)


def _open_file(host: HostPath) -> int:
    if not host.parts:
        raise NoSuchKey(host.uri)
    with _directory(host, host.parts[:-1]) as dir_fd:
        try:
            fd = os.open(host.parts[-1], FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise symlink_refused(host, host.parts[-1]) from None
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
                raise NoSuchKey(host.uri) from None
            raise StorageError(f"cannot read {host.uri}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NoSuchKey(host.uri)
    os.set_blocking(fd, True)
    return fd


def _walk(host: HostPath, fd: int, base: tuple[str, ...], name_start: str) -> list[ObjectInfo]:
    """Every regular file below the directory `fd` (at `base` under the root) whose first component
    starts with `name_start`; symlinks are neither listed nor entered."""
    found = []
    prefix = host.root.joinpath(*base)
    for dirpath, dirnames, filenames, dirfd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
        if dirpath == ".":
            dirnames[:] = [d for d in dirnames if d.startswith(name_start)]
            filenames = [f for f in filenames if f.startswith(name_start)]
        for name in filenames:
            if name.startswith(TEMP_PREFIX):
                continue
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                key = os.path.normpath(os.path.join(prefix, dirpath, name))
                found.append(ObjectInfo(key, st.st_size, modified(st), f"file://{key}"))
    return sorted(found, key=lambda obj: obj.key)

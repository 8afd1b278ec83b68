"""Apply OCI/docker image layers onto a rootfs directory, safely, and cache unpacked rootfs by chain ID.

A layer blob is streamed once (`layerstream`: a reader thread decompresses gzip/zstd/plain, sniffed
from magic bytes, and hashes for the diff_id check; `tarfile` in "r|" mode parses the headers) and
this module creates the entries itself. tarfile's extract()/filters are never used: every path
is resolved below the root with `safepath` (no symlink is ever followed, `..` may not escape).
Layer semantics follow image-spec layer.md: whiteouts, opaque directories, hard links within the
root, ownership and modes (when privileged), PAX `SCHILY.xattr.*`, and directory mtimes last.
Every entry is counted against the image's `limits.UnpackBudget` before it is created, so a bomb
stops before it fills the disk; a failed unpack leaves no partial rootfs behind.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from forklift.config import DEFAULT_MAX_IMAGE_FILES
from forklift.fslock import locked
from forklift.images.errors import ImageError
from forklift.images.layerstream import (
    FORMAT_ERRORS,
    HeaderTooLarge,
    LayerStream,
    members,
    read_data,
    sniff_compression,
)
from forklift.images.limits import ImageLimitExceeded, UnpackBudget, UnpackLimits
from forklift.images.safepath import DirWalker, UnsafePath, open_dir_fd, remove_at, split_path

_T = TypeVar("_T")
log = logging.getLogger(__name__)


class LayerError(ImageError):
    """A layer cannot be applied; the message names the layer digest and what is wrong."""


@dataclass(frozen=True)
class Layer:
    path: Path  # the blob file (compressed or not)
    digest: str  # "sha256:..." of the blob
    media_type: str  # OCI/docker layer media type (compression is sniffed from magic bytes too)
    diff_id: str | None = None  # "sha256:..." of the uncompressed tar; verified when given
    size: int = 0  # the blob's size from its descriptor (0: unknown), for the free-disk check


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """OCI ChainIDs: chain[0] = diff_id[0]; chain[i] = sha256(chain[i-1] + " " + diff_id[i])."""
    chain: list[str] = []
    for diff_id in diff_ids:
        if chain:
            diff_id = "sha256:" + hashlib.sha256(f"{chain[-1]} {diff_id}".encode()).hexdigest()
        chain.append(diff_id)
    return chain


# -- applying entries ------------------------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


class _Applier:
    """State for one layer: created paths (whiteouts spare them) and directories to finish last."""

    def __init__(self, root: Path, privileged: bool, budget: UnpackBudget | None) -> None:
        self.walker = DirWalker(root)
        self.privileged = privileged
        self.budget = budget
        self.written: set[tuple[str, ...]] = set()  # entries of this layer
        self.ancestors: set[tuple[str, ...]] = {()}  # directories holding entries of this layer
        self.skipped: set[tuple[str, ...]] = set()  # devices not created (unprivileged)
        self.dirs: dict[tuple[str, ...], tarfile.TarInfo] = {}

    def entry(self, m: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        parts = split_path(m.name)
        if not parts:
            if not m.isdir():
                raise UnsafePath("would replace the root")
            self.dirs[()] = m
            return
        parent = parts[:-1]
        while parent not in self.ancestors:
            self.ancestors.add(parent)
            parent = parent[:-1]
        if parts[-1].startswith(_WHITEOUT):
            return self._whiteout(parts)
        if self.budget is not None:  # m.size of a sparse file is its real size: it is written in full
            self.budget.entry(m.size if m.isreg() else 0)
        self.written.add(parts)
        if m.isreg():
            fd = self._create(parts, lambda pfd, name: os.open(name, _WRITE_FLAGS, 0o600, dir_fd=pfd))
            try:
                self._copy(tf, m, fd)
                self._metadata(fd, m)
            finally:
                os.close(fd)
        elif m.isdir():
            self._mkdir(parts)
            self.dirs.pop(parts, None)
            self.dirs[parts] = m  # re-inserted: finished before its ancestors (reverse order)
        elif m.issym():
            self._create(parts, lambda pfd, name: os.symlink(m.linkname, name, dir_fd=pfd))
            self._metadata_at(parts, m, chmod=False)
        elif m.islnk():
            self._hardlink(parts, m)
        elif m.ischr() or m.isblk() or m.isfifo():
            if not m.isfifo() and not self.privileged:
                log.debug("skipping device %s (unprivileged)", m.name)
                self.skipped.add(parts)
                return
            kind = stat.S_IFIFO if m.isfifo() else stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            dev = os.makedev(m.devmajor, m.devminor)
            self._create(parts, lambda pfd, name: os.mknod(name, kind | 0o600, dev, dir_fd=pfd))
            self._metadata_at(parts, m, chmod=True)
        else:
            log.warning("skipping %s: unsupported tar entry type %r", m.name, m.type)

    def _create(self, parts: tuple[str, ...], make: Callable[[int, str], _T]) -> _T:  # make(parent_fd, name)
        pfd = self.walker.open_dir(parts[:-1], create=True)
        try:
            return make(pfd, parts[-1])
        except FileExistsError:  # replace whatever was there (a directory too), then retry
            if remove_at(pfd, parts[-1]):
                self.walker.forget(parts)
            return make(pfd, parts[-1])

    def _mkdir(self, parts: tuple[str, ...]) -> None:
        pfd = self.walker.open_dir(parts[:-1], create=True)
        try:
            os.mkdir(parts[-1], 0o700, dir_fd=pfd)  # final mode is applied at the end of the layer
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(parts[-1], dir_fd=pfd).st_mode):
                remove_at(pfd, parts[-1])
                os.mkdir(parts[-1], 0o700, dir_fd=pfd)

    def _copy(self, tf: tarfile.TarFile, m: tarfile.TarInfo, fd: int) -> None:
        for data in read_data(tf, m):
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

    def _hardlink(self, parts: tuple[str, ...], m: tarfile.TarInfo) -> None:
        what = f"is a hard link to {m.linkname!r}, which"
        try:
            target = split_path(m.linkname)
        except UnsafePath:
            raise UnsafePath(f"{what} escapes the root") from None
        if target in self.skipped:
            self.skipped.add(parts)
            return
        if not target or target == parts:
            raise UnsafePath(f"{what} is not a valid target")
        try:
            tfd = os.dup(self.walker.open_dir(target[:-1]))  # own fd: the walker may evict its copy
        except FileNotFoundError:
            raise UnsafePath(f"{what} does not exist in the rootfs") from None
        except UnsafePath as e:
            raise UnsafePath(f"{what} {e}") from None
        try:
            try:
                st = os.lstat(target[-1], dir_fd=tfd)
            except FileNotFoundError:
                raise UnsafePath(f"{what} does not exist in the rootfs") from None
            if stat.S_ISDIR(st.st_mode):
                raise UnsafePath(f"{what} is a directory")
            self._create(parts, lambda pfd, name: os.link(
                target[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False))
        finally:
            os.close(tfd)

    def _metadata(self, fd: int, m: tarfile.TarInfo) -> None:
        """Owner, mode, xattrs, mtime, in that order (chown clears setuid and file capabilities)."""
        if self.privileged:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)
        if m.pax_headers:
            self._xattrs(fd, m)
        _set_mtime(m, fd)

    def _metadata_at(self, parts: tuple[str, ...], m: tarfile.TarInfo, chmod: bool) -> None:
        """Metadata by name, for symlinks, FIFOs and devices (nothing we could open for writing)."""
        pfd, name = self.walker.open_dir(parts[:-1]), parts[-1]
        if self.privileged:
            os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:  # only for the FIFO/device just created here, so following cannot leave the root
            os.chmod(name, m.mode & 0o7777, dir_fd=pfd)
        if any(k.startswith("SCHILY.xattr.") for k in m.pax_headers):
            log.debug("not applying xattrs to %s (%s)", m.name, "symlink" if m.issym() else "special file")
        _set_mtime(m, name, dir_fd=pfd, follow_symlinks=False)

    def _xattrs(self, fd: int, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                attr = key[len("SCHILY.xattr.") :]
                try:
                    os.setxattr(fd, attr, value.encode("utf-8", "surrogateescape"))
                except OSError as e:
                    level = logging.WARNING if attr.startswith("security.") else logging.DEBUG
                    log.log(level, "cannot set xattr %s on %s: %s", attr, m.name, e.strerror)

    def _whiteout(self, parts: tuple[str, ...]) -> None:
        """`.wh.NAME` removes lower-layer NAME; `.wh..wh..opq` every lower-layer child of the dir.

        Entries this layer wrote are spared, so the marker's position in the tar does not matter.
        """
        base, parent = parts[-1], parts[:-1]
        try:
            pfd = self.walker.open_dir(parent)
        except FileNotFoundError:
            return  # nothing below to hide
        if base == _OPAQUE:
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
            try:
                for child in os.listdir(fd):
                    self._prune(fd, child, parent + (child,))
            finally:
                os.close(fd)
        elif base.startswith(_WHITEOUT + _WHITEOUT):
            log.debug("ignoring special whiteout %s", "/".join(parts))
        else:
            name = base[len(_WHITEOUT) :]
            if name in ("", ".", ".."):
                raise UnsafePath("is an invalid whiteout")
            self._prune(pfd, name, parent + (name,))

    def _prune(self, dir_fd: int, name: str, path: tuple[str, ...]) -> None:
        if path not in self.written and path not in self.ancestors:
            if remove_at(dir_fd, name):
                self.walker.forget(path)
            return
        fd = open_dir_fd(dir_fd, name)
        if fd is not None:  # a directory of this layer (or holding its entries): prune inside
            try:
                for child in os.listdir(fd):
                    self._prune(fd, child, path + (child,))
            finally:
                os.close(fd)

    def finish(self) -> None:
        """Directory owner/mode/xattrs/mtime, deepest first, after all their children exist."""
        for parts, m in reversed(self.dirs.items()):
            try:
                pfd = self.walker.open_dir(parts[:-1]) if parts else self.walker.root_fd
            except (FileNotFoundError, UnsafePath):
                continue  # removed or replaced later in this layer
            fd = open_dir_fd(pfd, parts[-1] if parts else ".")
            if fd is not None:
                try:
                    self._metadata(fd, m)
                finally:
                    os.close(fd)

    def close(self) -> None:
        self.walker.close()


def _set_mtime(m: tarfile.TarInfo, target: int | str, **kw: object) -> None:
    try:
        os.utime(target, (m.mtime, m.mtime), **kw)  # type: ignore[arg-type]
    except (OverflowError, ValueError, OSError) as e:
        log.debug("cannot set mtime of %s: %s", m.name, e)


def apply_layer(root: Path, layer: Layer, *, privileged: bool | None = None,
                budget: UnpackBudget | None = None, abort: Callable[[], None] | None = None) -> None:
    """Stream `layer` and apply it onto the directory `root` (see module docstring).

    `privileged` (default: running as root) creates devices and applies ownership; `budget` counts
    the entries against the image's caps (None: not counted; headers are bounded all the same).
    `abort()` is called before each entry and raises to stop part-way (`root` is then half made).
    """
    if privileged is None:
        privileged = os.geteuid() == 0
    where = f"layer {layer.digest}"
    hasher = None
    if layer.diff_id:
        algo, _, _ = layer.diff_id.partition(":")
        if algo not in ("sha256", "sha384", "sha512"):
            raise LayerError(f"{where}: unsupported diff_id {layer.diff_id!r}")
        hasher = hashlib.new(algo)
    try:
        f = open(layer.path, "rb", buffering=0)  # noqa: SIM115 - closed after the reader thread stops
    except OSError as e:
        raise LayerError(f"{where}: cannot open blob: {e}") from None
    applier = stream = m = None
    try:
        stream = LayerStream(f, sniff_compression(os.pread(f.fileno(), 6, 0), layer.media_type), hasher)
        applier = _Applier(root, privileged, budget)
        for m, tf in members(stream):
            if abort is not None:
                abort()
            applier.entry(m, tf)
        m = None
        applier.finish()
        stream.drain()
    except UnsafePath as e:
        raise LayerError(f"{where}: entry {m.name if m else '?'!r} {e}") from None
    except HeaderTooLarge as e:
        image = f"image {budget.image}: " if budget is not None else ""
        raise ImageLimitExceeded(f"{image}{where}: {e}; such layers are refused") from None
    except FORMAT_ERRORS as e:
        raise LayerError(f"{where}: malformed or truncated layer: {e}") from None
    except (OSError, ValueError, RecursionError) as e:
        what = f"entry {m.name!r}" if m is not None else "cannot apply"
        if budget is not None and isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise budget.disk_full(f"{where}: {what}") from None
        raise LayerError(f"{where}: {what}: {e}") from None
    finally:
        if applier is not None:
            applier.close()
        if stream is not None:
            stream.close()  # stops the reader thread before its file is closed
        f.close()
    if hasher is not None and f"{hasher.name}:{hasher.hexdigest()}" != layer.diff_id:
        got = f"{hasher.name}:{hasher.hexdigest()}"
        raise LayerError(f"{where}: diff_id mismatch: expected {layer.diff_id}, got {got}")


# -- rootfs cache ----------------------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-f]{64}")


class RootfsCache:
    """Unpacked rootfs directories keyed by the layer chain ID under <home>/rootfs/<chainid-hex>; safe to delete."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _hex(self, chain_id: str) -> str:
        hexpart = chain_id.removeprefix("sha256:")
        if not _HEX.fullmatch(hexpart):
            raise ValueError(f"not a sha256 chain ID: {chain_id!r}")
        return hexpart

    def _lock_path(self, hexpart: str) -> Path:
        return self.directory / f".{hexpart}.lock"

    @contextmanager
    def _lock(self, hexpart: str, abort: Callable[[], None] | None = None) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with locked(self._lock_path(hexpart), abort=abort):  # excludes other threads and processes
            yield

    def get_or_unpack(self, layers: Sequence[Layer], wait_for: Callable[[Layer], None] | None = None, *,
                      image: str = "being unpacked", limits: UnpackLimits | None = None,
                      abort: Callable[[], None] | None = None) -> Path:
        """The rootfs for `layers` (base first), unpacking into a temp dir renamed into place.

        `wait_for(layer)` is called before each layer is applied and may block until its blob is
        complete, so unpacking overlaps with downloading the layers above it. `limits` caps the
        image's unpacked bytes and entries (default: free disk less a reserve, and
        `DEFAULT_MAX_IMAGE_FILES`); errors name `image`. A failed unpack removes its partial rootfs.
        `abort()` raises to give up (a stopped job): it is called while waiting for the cache's lock,
        which another pull of the same image may hold for as long as its own downloads take, and
        between the entries of each layer; what it raises is raised here, the partial rootfs removed.
        """
        if not layers:
            raise LayerError("the image has no layers: a container needs at least one")
        missing = [layer.digest for layer in layers if not layer.diff_id]
        if missing:
            raise LayerError(f"layer {missing[0]}: diff_id required to key the rootfs cache")
        hexpart = self._hex(chain_ids([layer.diff_id for layer in layers if layer.diff_id])[-1])
        final = self.directory / hexpart
        if final.is_dir():
            return final
        with self._lock(hexpart, abort):
            if final.is_dir():
                return final
            for stale in self.directory.glob(f".tmp-{hexpart}-*"):  # left by a dead process
                shutil.rmtree(stale, ignore_errors=True)
            budget = UnpackBudget(image, limits or UnpackLimits(None, DEFAULT_MAX_IMAGE_FILES), self.directory)
            budget.check_room([layer.size for layer in layers])
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{hexpart}-", dir=self.directory))
            try:
                os.chmod(tmp, 0o755)
                for layer in layers:
                    if wait_for is not None:
                        wait_for(layer)
                    apply_layer(tmp, layer, budget=budget, abort=abort)
                if abort is not None:
                    abort()
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final

    def remove(self, chain_id: str) -> None:
        """Delete the rootfs of `chain_id` ("sha256:<hex>" or "<hex>"), if cached."""
        hexpart = self._hex(chain_id)
        final = self.directory / hexpart
        with self._lock(hexpart):
            for stale in self.directory.glob(f".rm-{hexpart}-*"):  # left by a dead process
                shutil.rmtree(stale, ignore_errors=True)
            if not final.is_dir():
                return
            trash = Path(tempfile.mkdtemp(prefix=f".rm-{hexpart}-", dir=self.directory))
            os.rename(final, trash / "rootfs")  # gone from view at once, then deleted
            shutil.rmtree(trash, ignore_errors=True)

    def list(self) -> list[str]:
        """Chain IDs ("sha256:<hex>") of the complete rootfs directories."""
        if not self.directory.is_dir():
            return []
        return sorted(f"sha256:{p.name}" for p in self.directory.iterdir() if _HEX.fullmatch(p.name) and p.is_dir())

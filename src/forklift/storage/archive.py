"""`model.tar.gz`: pack a directory's contents, and unpack one safely into /opt/ml/model.

Packing writes entries relative to the directory (`model.pkl`, `code/inference.py`, no `./`), in
sorted order with owner 0:0 and a zero gzip timestamp, so packing the same tree twice gives the same
bytes. Extraction trusts nothing in the archive: only regular files, directories, symlinks and hard
links to earlier members are accepted; absolute names, `..` components, symlinks pointing outside
the destination (directly or through other symlinks) and writes through symlinks are refused with
UnsafeArchive. tarfile's own extract() is not used, so the rules here are the only ones that apply.
An `ArchiveBounds` caps what one extraction may write (regular files' bytes by their headers, and
entries), counted before each entry is made, so a gzip bomb is refused at its first header.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from forklift.storage.atomic import atomic_path
from forklift.storage.errors import StorageError, UnsafeArchive

_COMPRESS_LEVEL = 6  # 9 is far slower on multi-GB weights for a few percent
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def pack_tar_gz(src_dir: Path, dest_file: Path) -> Path:
    """Write the contents of `src_dir` (not the directory itself) to `dest_file`, atomically."""
    src_dir, dest_file = Path(src_dir), Path(dest_file)
    if not src_dir.is_dir():
        raise StorageError(f"{src_dir} is not a directory")
    with atomic_path(dest_file) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_COMPRESS_LEVEL) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        skip = {os.path.realpath(dest_file), os.path.realpath(tmp)}
        for path in _sorted_entries(src_dir):
            if os.path.realpath(path) in skip:  # the archive being written inside the tree it packs
                continue
            info = tar.gettarinfo(str(path), arcname=path.relative_to(src_dir).as_posix())
            if not (info.isfile() or info.isdir() or info.issym()):
                continue  # sockets and fifos have no meaning in a model archive
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isfile():
                with open(path, "rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)
    return dest_file


def _sorted_entries(root: Path) -> list[Path]:
    entries: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into symlinked directories
        dirnames.sort()
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        entries += [Path(dirpath, name) for name in sorted(dirnames + filenames)]
        dirnames[:] = [d for d in dirnames if d not in links]
    return sorted(entries, key=lambda p: p.relative_to(root).parts)


@dataclass(frozen=True)
class ArchiveBounds:
    """The most one extraction may write: bytes of regular files (by their headers) and entries."""

    max_bytes: int
    max_entries: int


def extract_tar_gz(archive: Path, dest_dir: Path, bounds: ArchiveBounds | None = None) -> list[str]:
    """Unpack a .tar.gz (or plain .tar) into dest_dir; return the member names written.

    On UnsafeArchive dest_dir may hold the members before the refused one: discard it.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    extractor = _Extractor(dest_dir, bounds)
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                extractor.add(member, tar)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        extractor.remove_escaping_symlinks()
        raise StorageError(f"{archive}: not a readable tar.gz archive ({exc})") from None
    except BaseException:
        extractor.remove_escaping_symlinks()  # a half-extracted tree must not keep a way out either
        raise
    escaping = extractor.remove_escaping_symlinks()
    if escaping:
        raise UnsafeArchive(f"symlink {escaping[0]!r} resolves outside {dest_dir}")
    return extractor.names


class _Extractor:
    def __init__(self, dest: Path, bounds: ArchiveBounds | None = None) -> None:
        self.dest = dest
        self.bounds = bounds
        self.written_bytes = 0
        self.real_dest = os.path.realpath(dest)
        self.names: list[str] = []
        self.symlinks: list[tuple[str, Path]] = []
        self.files: dict[tuple[str, ...], Path] = {}

    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        parts = _member_parts(member.name)
        if not parts:
            return  # "./" itself: the destination already exists
        target = self.dest.joinpath(*parts)
        self._count(member)
        if member.isdir():
            self._make_dir(target, member.name)
        elif member.isfile():
            self._make_dir(target.parent, member.name)
            self._write(target, tar.extractfile(member), member.mode)
            self.files[parts] = target
        elif member.issym():
            self._symlink(member, parts, target)
        elif member.islnk():
            try:
                source = self.files.get(_member_parts(member.linkname))
            except UnsafeArchive:  # an absolute or `..` target cannot be an earlier member either
                source = None
            if source is None:
                raise UnsafeArchive(f"hard link {member.name!r} → {member.linkname!r}: target is not an earlier file")
            self._make_dir(target.parent, member.name)
            # A copy, read without following links: a real hard link would alias whatever `source` becomes.
            with os.fdopen(os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as data:
                self._write(target, data, member.mode)
            self.files[parts] = target
        else:
            raise UnsafeArchive(f"member {member.name!r} is a {_kind(member)}; only files, directories and "
                                f"symlinks may be in a model archive")
        self.names.append("/".join(parts))

    def _count(self, member: tarfile.TarInfo) -> None:
        """Refuse the entry that would take the extraction past its bounds, before it is made."""
        if self.bounds is None:
            return
        if len(self.names) + 1 > self.bounds.max_entries:
            raise UnsafeArchive(f"the archive has more than {self.bounds.max_entries:,} entries")
        if member.isfile() or member.islnk():  # a hard link is written out as a copy
            size = member.size if member.isfile() else self._earlier_size(member)
            self.written_bytes += size
            if self.written_bytes > self.bounds.max_bytes:
                raise UnsafeArchive(f"the archive unpacks to more than {self.bounds.max_bytes:,} bytes")

    def _earlier_size(self, member: tarfile.TarInfo) -> int:
        try:
            source = self.files.get(_member_parts(member.linkname))
        except UnsafeArchive:
            return 0  # refused when it is made
        return os.lstat(source).st_size if source is not None else 0

    def _make_dir(self, directory: Path, name: str) -> None:
        """Create `directory` and its parents, after checking that with symlinks resolved it stays inside."""
        # realpath resolves the part that exists; the rest has no `..` left to resolve.
        if not self._inside(os.path.realpath(directory)):
            raise UnsafeArchive(f"member {name!r} would be written outside {self.dest} through a symlink")
        try:
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UnsafeArchive(f"member {name!r} needs a directory where the archive put a file") from None

    def _write(self, target: Path, data, mode: int) -> None:
        _remove_non_dir(target)
        fd = os.open(target, _WRITE_FLAGS, 0o600)
        with os.fdopen(fd, "wb") as out:
            if data is not None:
                shutil.copyfileobj(data, out, 1 << 20)
            os.fchmod(out.fileno(), mode & 0o777)  # never setuid/setgid/sticky from an archive

    def _symlink(self, member: tarfile.TarInfo, parts: tuple[str, ...], target: Path) -> None:
        link = member.linkname
        if os.path.isabs(link):
            raise UnsafeArchive(f"symlink {member.name!r} → {link!r} is absolute")
        resolved = os.path.normpath(os.path.join(*parts[:-1], link)) if len(parts) > 1 else os.path.normpath(link)
        if resolved == ".." or resolved.startswith("../"):
            raise UnsafeArchive(f"symlink {member.name!r} → {link!r} points outside the archive")
        self._make_dir(target.parent, member.name)
        _remove_non_dir(target)
        os.symlink(link, target)
        self.files.pop(parts, None)
        self.symlinks.append((member.name, target))

    def remove_escaping_symlinks(self) -> list[str]:
        """Chains of individually harmless links (`t → s/s/..` made before `s → .`) can still escape,
        so once every link exists resolve them all; remove and return the names of those that leave."""
        escaping = []
        for name, link in self.symlinks:
            if os.path.islink(link) and not self._inside(os.path.realpath(link)):
                os.unlink(link)
                escaping.append(name)
        return escaping

    def _inside(self, real: str) -> bool:
        return real == self.real_dest or real.startswith(self.real_dest + os.sep)


def _member_parts(name: str) -> tuple[str, ...]:
    if name.startswith("/"):
        raise UnsafeArchive(f"member {name!r} has an absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchive(f"member {name!r} contains '..'")
    return parts


def _remove_non_dir(path: Path) -> None:
    """Make room for a new entry without following what is there (a symlink is replaced, not written)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise UnsafeArchive(f"{path} is a directory in the archive and cannot also be a file or link")
    os.unlink(path)


def _kind(member: tarfile.TarInfo) -> str:
    if member.ischr() or member.isblk():
        return "device node"
    if member.isfifo():
        return "fifo"
    return f"member of type {member.type!r}"

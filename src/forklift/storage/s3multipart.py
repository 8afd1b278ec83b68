"""S3 multipart uploads on the embedded bucket store: parts kept outside every bucket until Complete.

An upload is a directory `buckets/.forklift-s3/uploads/<UploadId>/` (not a bucket: bucket names start
with a letter or digit) holding `upload.json` (bucket, key, the object's metadata) and, per part,
`NNNNN` (its bytes, renamed into place whole) after `NNNNN.json` (its MD5 and size). Complete streams the
named parts, in order, into a temporary file beside the object's and renames it over the key, so the
object appears whole or not at all; its ETag is S3's: the MD5 of the parts' binary MD5s, `-N`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from forklift.atomicfile import TEMP_PREFIX, write_atomically
from forklift.storage.errors import StorageError
from forklift.storage.s3objects import ObjectMeta, S3Objects, check_key

MIN_PART = 5 * 1024 * 1024  # every part but the last (S3's EntityTooSmall)
MAX_PART_NUMBER = 10000
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class NoSuchUpload(StorageError):
    pass


class InvalidPart(StorageError):
    pass


class InvalidPartOrder(StorageError):
    pass


class EntityTooSmall(StorageError):
    pass


@dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiated: datetime
    headers: dict[str, str]
    user: dict[str, str]
    directory: Path


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class PartWrite:
    file: BinaryIO
    tmp: Path


class Multipart:
    def __init__(self, objects: S3Objects) -> None:
        self.objects = objects
        self.root = objects.state_dir / "uploads"

    def create(self, bucket: str, key: str, headers: dict[str, str], user: dict[str, str]) -> Upload:
        check_key(key)
        upload_id = secrets.token_urlsafe(24)
        directory = self.root / upload_id
        directory.mkdir(parents=True)
        now = datetime.now(tz=UTC)
        record = {"bucket": bucket, "key": key, "initiated": now.isoformat(), "headers": headers, "user": user}
        write_atomically(directory / "upload.json", json.dumps(record).encode())
        return Upload(upload_id, bucket, key, now, headers, user, directory)

    def get(self, bucket: str, key: str, upload_id: str) -> Upload:
        upload = self._read(upload_id)
        if upload is None or upload.bucket != bucket or upload.key != key:
            raise NoSuchUpload(upload_id)
        return upload

    def _read(self, upload_id: str) -> Upload | None:
        if not _UPLOAD_ID.fullmatch(upload_id):
            return None
        directory = self.root / upload_id
        try:
            record: dict[str, Any] = json.loads((directory / "upload.json").read_bytes())
            return Upload(upload_id, record["bucket"], record["key"], datetime.fromisoformat(record["initiated"]),
                          dict(record["headers"]), dict(record["user"]), directory)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def uploads(self, bucket: str, prefix: str = "") -> list[Upload]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        found = [u for u in map(self._read, names) if u is not None and u.bucket == bucket and u.key.startswith(prefix)]
        return sorted(found, key=lambda u: (u.key, u.initiated))

    @contextlib.contextmanager
    def writing_part(self, upload: Upload) -> Iterator[PartWrite]:
        """A temporary file for a part's bytes; `commit_part` renames it into place, else it is removed."""
        fd, tmp = tempfile.mkstemp(dir=upload.directory, prefix=TEMP_PREFIX)
        file = os.fdopen(fd, "w+b")
        try:
            yield PartWrite(file, Path(tmp))
        except BaseException:
            file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        finally:
            if not file.closed:
                file.close()

    def commit_part(self, upload: Upload, number: int, part: PartWrite, md5_hex: str) -> None:
        file = part.file
        file.flush()
        size = os.fstat(file.fileno()).st_size
        name = f"{number:05d}"
        write_atomically(upload.directory / f"{name}.json", json.dumps({"etag": md5_hex, "size": size}).encode())
        os.replace(part.tmp, upload.directory / name)

    def parts(self, upload: Upload) -> list[Part]:
        found = []
        for entry in sorted(os.listdir(upload.directory)):
            if entry.isdigit() and len(entry) == 5:
                part = self._part(upload, int(entry))
                if part is not None:
                    found.append(part)
        return found

    def _part(self, upload: Upload, number: int) -> Part | None:
        name = upload.directory / f"{number:05d}"
        try:
            st = os.stat(name)
            record = json.loads((upload.directory / f"{number:05d}.json").read_bytes())
        except (OSError, ValueError):
            return None
        if record.get("size") != st.st_size:
            return None  # a part being replaced: its new record is written, its bytes not yet renamed
        return Part(number, str(record["etag"]), st.st_size, datetime.fromtimestamp(st.st_mtime, tz=UTC))

    def complete(self, upload: Upload, bucket_dir: Path, wanted: list[tuple[int, str]]) -> ObjectMeta:
        """Assemble the parts `wanted` ((number, ETag) in the order given) into the object, atomically."""
        if not wanted:
            raise InvalidPart("You must specify at least one part.")
        numbers = [n for n, _ in wanted]
        if numbers != sorted(set(numbers)):
            raise InvalidPartOrder("The list of parts was not in ascending order. Parts must be ordered by part "
                                   "number.")
        parts = []
        for index, (number, etag) in enumerate(wanted):
            part = self._part(upload, number)
            if part is None or part.etag != etag.strip('"').lower():
                raise InvalidPart(f"One or more of the specified parts could not be found (part {number}). The part "
                                  "may not have been uploaded, or the specified entity tag may not match the part's "
                                  "entity tag.")
            if part.size < MIN_PART and index < len(wanted) - 1:
                raise EntityTooSmall(f"Your proposed upload (part {number}, {part.size} bytes) is smaller than the "
                                     f"minimum allowed size of {MIN_PART} bytes for every part but the last.")
            parts.append(part)
        digest = hashlib.md5(usedforsecurity=False)
        with self.objects.writing(bucket_dir, upload.key) as pending:
            for part in parts:
                digest.update(bytes.fromhex(part.etag))
                try:
                    source = open(upload.directory / f"{part.number:05d}", "rb")
                except FileNotFoundError:  # aborted (or completed) by another request meanwhile
                    raise NoSuchUpload(upload.upload_id) from None
                with source:
                    shutil.copyfileobj(source, pending.file, 1024 * 1024)
            meta = ObjectMeta(f"{digest.hexdigest()}-{len(parts)}", 0, datetime.now(tz=UTC), upload.headers,
                              upload.user, parts=len(parts))
            meta = self.objects.commit(pending, meta)
        self.abort(upload)
        return meta

    def abort(self, upload: Upload) -> None:
        shutil.rmtree(upload.directory, ignore_errors=True)

"""`file:///abs/path` and plain paths, behind the same ObjectStore protocol as the bucket stores.

A prefix that names an existing directory means that directory (as SageMaker local mode mounts a
`file://` channel), not every sibling whose name starts with it; any other prefix keeps S3's
"starts with" meaning. Files reached through symlinks are read like any file: the user named them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from forklift.storage.atomic import copy_file
from forklift.storage.base import ObjectInfo, PrefixTransfers
from forklift.storage.errors import InvalidURI, NoSuchKey
from forklift.storage.filetree import FileTree, modified
from forklift.storage.uri import Location, parse_uri


class LocalFiles(PrefixTransfers):
    def __init__(self) -> None:
        self._tree = FileTree(Path("/"), contained=False)

    def __repr__(self) -> str:
        return "LocalFiles()"

    @staticmethod
    def _location(uri: str) -> Location:
        loc = parse_uri(uri)
        if not loc.is_local:
            raise InvalidURI(f"{uri}: not a local path or file:// URI")
        return loc

    def path(self, uri: str) -> Path:
        return Path(self._location(uri).key)

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        loc = self._location(prefix_uri)
        if os.path.isdir(loc.key):
            loc = loc.as_directory()
        return [ObjectInfo("/" + key, st.st_size, modified(st), loc.with_key("/" + key).uri)
                for key, st in self._tree.list(loc.key.lstrip("/"))]

    def download(self, uri: str, dest_path: Path) -> Path:
        src = self._existing(uri)
        dest_path = Path(dest_path)
        copy_file(src, dest_path)
        return dest_path

    def upload(self, src_path: Path, uri: str) -> None:
        copy_file(Path(src_path), self.path(uri))

    def copy(self, src_uri: str, dst_uri: str) -> None:
        copy_file(self._existing(src_uri), self.path(dst_uri))

    def delete(self, uri: str) -> None:
        try:
            os.unlink(self.path(uri))
        except FileNotFoundError:
            pass

    def exists(self, uri: str) -> bool:
        return self.path(uri).is_file()

    def open_read(self, uri: str) -> BinaryIO:
        return open(self._existing(uri), "rb")

    def _existing(self, uri: str) -> Path:
        path = self.path(uri)
        if not path.is_file():
            raise NoSuchKey(uri)
        return path

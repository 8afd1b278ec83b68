"""A bucket's keys in S3's order, walked lazily: a page of a huge bucket reads only the directories it needs.

S3 lists keys in UTF-8 byte order, which for `str` is code-point order. Within one directory, sorting
files by name and subdirectories by name + "/" and descending in that order yields every key in that
order (every key below directory `d` starts with `d/`). A listing resumes after a key (start-after,
continuation) by skipping whole directories that sort before it, and a delimiter folds a directory
whose path already holds the delimiter past the prefix into one common prefix without reading it.
Another delimiter restarts the walk past each common prefix it returns; a page reads each directory
once all the same, and a walk enters a directory where the listing resumes (bisected), not at its start.
"""

from __future__ import annotations

import bisect
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from forklift.atomicfile import TEMP_PREFIX

MAX_KEYS = 1000
AFTER_ALL = "\U0010ffff"  # sorts after every character a key can continue with
Named = tuple[str, str, "os.stat_result | None"]  # a directory's entry: name ("/" after a directory's), path, stat


@dataclass(frozen=True)
class Entry:
    key: str
    path: str
    st: os.stat_result


@dataclass
class Page:
    entries: list[Entry]
    prefixes: list[str]
    truncated: bool
    last: str  # the last key or common prefix returned (where the next page starts)
    last_is_prefix: bool


def _entries(directory: str) -> list[Named]:
    """The directory's files (name, path, stat) and subdirectories (name + "/", path, None), sorted."""
    names: list[Named] = []
    try:
        with os.scandir(directory) as it:
            for entry in it:
                name = entry.name
                if name.startswith(TEMP_PREFIX) or not _utf8(name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    names.append((name + "/", entry.path, None))
                elif stat.S_ISREG(st.st_mode):  # symlinks, sockets, fifos: no objects
                    names.append((name, entry.path, st))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    names.sort(key=lambda item: item[0])
    return names


def _walk(directory: str, rel: str, prefix: str, after: str, fold: str,
          read: dict[str, list[Named]]) -> Iterator[tuple[str, str, os.stat_result | None]]:
    """(key, path, stat) of files and (folded prefix, path, None) of folded directories, in key order;
    `read` keeps the directories already read by this page's walks."""
    names = read.get(directory)
    if names is None:
        names = read[directory] = _entries(directory)
    start = 0
    if after.startswith(rel):
        # Straight to where the listing resumes: the entry just before it may be the directory holding it.
        start = max(0, bisect.bisect_right(names, after[len(rel):], key=lambda item: item[0]) - 1)
    for name, path, st in names[start:]:
        key = rel + name
        if st is not None:
            if key > after and key.startswith(prefix):
                yield key, path, st
            continue
        # A directory: every key below starts with `key` (which ends in "/").
        if not (key.startswith(prefix) or prefix.startswith(key)):
            continue
        if not after.startswith(key) and key < after:
            continue  # all of it sorts before where the listing resumes
        if fold and len(key) > len(prefix) and fold in key[len(prefix):]:
            yield key, path, None
            continue
        yield from _walk(path, key, prefix, after, fold, read)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.fsdecode's surrogate escapes: a file name no key can name
        return False
    return True


def list_page(bucket_dir: Path, prefix: str = "", delimiter: str = "", after: str = "", max_keys: int = MAX_KEYS,
              after_prefix: bool = False) -> Page:
    """One page of the bucket's listing: keys after `after` (past every key under it when `after_prefix`,
    a common prefix returned before), at most `max_keys` keys and common prefixes together."""
    resume = after + AFTER_ALL if after_prefix else after
    fold = delimiter == "/"  # directories fold unread; any other delimiter is found in keys as they come
    entries: list[Entry] = []
    prefixes: list[str] = []
    last, last_is_prefix = "", False
    truncated = False
    read: dict[str, list[Named]] = {}  # a walk restarted past each common prefix reads no directory again
    while not truncated:
        restart = None
        for key, path, st in _walk(str(bucket_dir), "", prefix, resume, "/" if fold else "", read):
            common = None
            if delimiter:
                at = key.find(delimiter, len(prefix))
                if at >= 0:
                    common = key[: at + len(delimiter)]
            if common is not None and (resume.startswith(common) or (prefixes and prefixes[-1] == common)):
                continue  # the page before ended inside it, or it was just returned
            if len(entries) + len(prefixes) >= max_keys:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last, last_is_prefix = common, True
                if not fold:  # skip the rest of its keys by walking again from past them
                    restart = common + AFTER_ALL
                    break
            elif st is not None:
                entries.append(Entry(key, path, st))
                last, last_is_prefix = key, False
        if restart is None:
            break
        resume = restart
    return Page(entries, prefixes, truncated, last, last_is_prefix)

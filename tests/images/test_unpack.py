"""The safe layer unpacker: real tarballs built here, applied onto real directories.

Hostile layers must fail with LayerError (or be applied harmlessly inside the root) and leave
everything outside the root untouched; bait files and directories outside the root check that.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from forklift.images import unpack
from forklift.images.unpack import Layer, LayerError, RootfsCache, apply_layer, chain_ids

IS_ROOT = os.geteuid() == 0
MTIME = 1_600_000_000
MEDIA = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "tar": "application/vnd.oci.image.layer.v1.tar",
}


# -- building layers ---------------------------------------------------------------------------


@dataclass
class E:
    """One tar entry."""

    info: tarfile.TarInfo
    data: bytes | None = None


def _info(name: str, type_: bytes, mode: int, uid: int, gid: int, mtime: float, xattrs: dict | None) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = type_, mode, uid, gid, mtime
    if xattrs:
        ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}
    return ti


def F(name: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: float = MTIME,
      xattrs: dict | None = None) -> E:  # fmt: skip
    ti = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime, xattrs)
    ti.size = len(data)
    return E(ti, data)


def D(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: float = MTIME, xattrs: dict | None = None) -> E:
    return E(_info(name, tarfile.DIRTYPE, mode, uid, gid, mtime, xattrs))


def S(name: str, target: str, uid: int = 0, gid: int = 0) -> E:
    ti = _info(name, tarfile.SYMTYPE, 0o777, uid, gid, MTIME, None)
    ti.linkname = target
    return E(ti)


def H(name: str, target: str) -> E:
    ti = _info(name, tarfile.LNKTYPE, 0o644, 0, 0, MTIME, None)
    ti.linkname = target
    return E(ti)


def FIFO(name: str, mode: int = 0o640) -> E:
    return E(_info(name, tarfile.FIFOTYPE, mode, 0, 0, MTIME, None))


def CHR(name: str, major: int, minor: int, mode: int = 0o666) -> E:
    ti = _info(name, tarfile.CHRTYPE, mode, 0, 0, MTIME, None)
    ti.devmajor, ti.devminor = major, minor
    return E(ti)


def tar_bytes(entries: list[E]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            tf.addfile(e.info, io.BytesIO(e.data) if e.data is not None else None)
    return raw.getvalue()


def compress(data: bytes, comp: str) -> bytes:
    if comp == "gzip":
        return gzip.compress(data, compresslevel=1)
    if comp == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layer(blobs: Path, tar: bytes, comp: str = "gzip", media_type: str | None = None,
                diff_id: str | None | bool = True, blob: bytes | None = None) -> Layer:  # fmt: skip
    blob = compress(tar, comp) if blob is None else blob
    blobs.mkdir(parents=True, exist_ok=True)
    digest = sha(blob)
    path = blobs / digest.split(":")[1]
    path.write_bytes(blob)
    did = sha(tar) if diff_id is True else (diff_id or None)
    return Layer(path, digest, media_type or MEDIA[comp], did)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def mk(tmp_path: Path):
    """mk(entries, comp="gzip", **kw) -> Layer written under tmp_path/blobs."""
    return lambda entries, comp="gzip", **kw: write_layer(tmp_path / "blobs", tar_bytes(entries), comp, **kw)


def tree(root: Path) -> dict[str, tuple]:
    """Relative path -> (kind, mode bits, uid, gid, size-or-target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            extra = os.readlink(p) if stat.S_ISLNK(st.st_mode) else st.st_size if stat.S_ISREG(st.st_mode) else None
            kind, mode = stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode)
            out[str(p.relative_to(root))] = (kind, mode, st.st_uid, st.st_gid, extra)
    return out


# -- entry types and metadata --------------------------------------------------------------------


def test_entry_types_and_metadata(root: Path, mk) -> None:
    big = os.urandom(3 << 20) + b"tail"  # spans several read chunks
    cap = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)  # v2 caps: cap_net_bind_service+ep
    layer = mk([
        D("./", mode=0o755),
        D("etc/", mode=0o755, mtime=MTIME + 5),
        F("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", mtime=MTIME + 1),
        D("tmp/", mode=0o1777),
        D("secret/", mode=0o700, uid=1000, gid=1001, xattrs={"user.note": b"kept"}),
        F("secret/key", b"k", mode=0o600, uid=1000, gid=1001),
        F("bin/busybox", big, mode=0o755),  # parent dir has no entry of its own
        S("bin/sh", "/bin/busybox"),
        S("bin/ls", "busybox"),
        F("usr/bin/su", b"su", mode=0o4755),
        F("usr/bin/wall", b"wall", mode=0o2755, gid=5),
        F("usr/bin/ping", b"ping", mode=0o755, xattrs={"security.capability": cap, "user.x": b"\xff\x00\x01"}),
        H("usr/bin/su-again", "usr/bin/su"),
        H("bin/hard-abs", "/etc/passwd"),  # absolute link name: relative to the root
        FIFO("run/initctl", mode=0o600),
        CHR("dev/null", 1, 3),
        F("./dup", b"first"),
        F("dup", b"second"),  # later entry wins
    ])
    apply_layer(root, layer)

    assert (root / "etc/passwd").read_text().startswith("root:")
    assert (root / "bin/busybox").read_bytes() == big
    assert os.readlink(root / "bin/sh") == "/bin/busybox"
    assert os.readlink(root / "bin/ls") == "busybox"
    assert (root / "dup").read_bytes() == b"second"
    su, su2 = (root / "usr/bin/su").stat(), (root / "usr/bin/su-again").stat()
    assert su.st_ino == su2.st_ino and su.st_nlink == 2
    assert (root / "bin/hard-abs").stat().st_ino == (root / "etc/passwd").stat().st_ino
    assert stat.S_ISFIFO((root / "run/initctl").lstat().st_mode)
    assert stat.S_IMODE((root / "run/initctl").lstat().st_mode) == 0o600
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((root / "secret").stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "bin").stat().st_mode) == 0o755  # implicit parent
    assert os.getxattr(root / "secret", "user.note") == b"kept"
    assert os.getxattr(root / "usr/bin/ping", "user.x") == b"\xff\x00\x01"
    # mtimes: files, and directories after their children were created
    assert (root / "etc/passwd").stat().st_mtime == MTIME + 1
    assert (root / "etc").stat().st_mtime == MTIME + 5
    assert (root / "bin/sh").lstat().st_mtime == MTIME
    if IS_ROOT:
        assert stat.S_IMODE(su.st_mode) == 0o4755
        assert stat.S_IMODE((root / "usr/bin/wall").stat().st_mode) == 0o2755
        assert (root / "usr/bin/wall").stat().st_gid == 5
        key = (root / "secret/key").stat()
        assert (key.st_uid, key.st_gid) == (1000, 1001)
        assert ((root / "secret").stat().st_uid, (root / "secret").stat().st_gid) == (1000, 1001)
        assert os.getxattr(root / "usr/bin/ping", "security.capability") == cap
        dev = (root / "dev/null").lstat()
        assert stat.S_ISCHR(dev.st_mode) and (os.major(dev.st_rdev), os.minor(dev.st_rdev)) == (1, 3)


def test_unprivileged_skips_devices_and_ownership(root: Path, mk) -> None:
    layer = mk([F("owned", b"x", uid=1234, gid=1234), CHR("dev/null", 1, 3), H("dev/null-link", "dev/null"),
                FIFO("fifo")])  # fmt: skip
    apply_layer(root, layer, privileged=False)
    assert not (root / "dev/null").exists() and not (root / "dev/null-link").exists()
    assert stat.S_ISFIFO((root / "fifo").lstat().st_mode)
    assert (root / "owned").stat().st_uid == os.geteuid()


def test_replacing_entries_like_docker(root: Path, mk) -> None:
    apply_layer(root, mk([
        D("a/"), F("a/inner", b"1"),  # dir, to be replaced by a file
        F("b", b"file"),  # file, to be replaced by a dir
        F("c", b"file"),  # file, to be replaced by a symlink
        D("d/", mode=0o700), F("d/keep", b"k"),  # dir, stays a dir (new metadata)
        F("h1", b"old"), H("h2", "h1"),  # hard-linked pair; h1 gets replaced
    ]))  # fmt: skip
    apply_layer(root, mk([
        F("a", b"now a file"), D("b/"), F("b/x", b"x"), S("c", "/nowhere"), D("d/", mode=0o750), F("h1", b"new"),
    ]))  # fmt: skip
    assert (root / "a").read_bytes() == b"now a file"
    assert (root / "b/x").read_bytes() == b"x"
    assert os.readlink(root / "c") == "/nowhere"
    assert (root / "d/keep").read_bytes() == b"k"
    assert stat.S_IMODE((root / "d").stat().st_mode) == 0o750
    assert (root / "h1").read_bytes() == b"new"
    assert (root / "h2").read_bytes() == b"old"  # the other link keeps the lower content


def test_deep_paths_and_many_directories(root: Path, mk) -> None:
    """More directories than the walker caches, visited round-robin, and a 100-level hard link."""
    deep = "/".join(["d"] * 100)
    entries = [F(f"dir{i:03}/first", b"1") for i in range(150)]
    entries += [F(f"dir{i:03}/second", b"2") for i in range(150)]
    entries += [F(f"{deep}/leaf", b"leaf"), H("top-link", f"{deep}/leaf"), H(f"{deep}/back", "dir000/first")]
    apply_layer(root, mk(entries))
    assert all(sorted(os.listdir(root / f"dir{i:03}")) == ["first", "second"] for i in range(150))
    assert (root / "top-link").read_bytes() == b"leaf"
    assert (root / deep / "back").stat().st_ino == (root / "dir000/first").stat().st_ino
    apply_layer(root, mk([F(".wh.d"), F("dir149/.wh..wh..opq")]))
    assert not (root / "d").exists() and os.listdir(root / "dir149") == []


# -- whiteouts -----------------------------------------------------------------------------------


def test_whiteouts_and_opaque_dirs(root: Path, mk) -> None:
    apply_layer(root, mk([
        F("etc/motd", b"hi"), F("etc/keep", b"k"),
        D("opt/data/"), F("opt/data/f", b"f"), D("opt/data/sub/"), F("opt/data/sub/g", b"g"),
        D("first/"), F("first/old", b"o"), D("first/olddir/"), F("first/olddir/x", b"x"),
        D("last/"), F("last/old", b"o"), D("last/same/"), F("last/same/lower", b"l"),
        S("link", "/etc"), D("gone-dir/"), F("gone-dir/x", b"x"),
    ]))  # fmt: skip
    apply_layer(root, mk([
        F("etc/.wh.motd"),  # plain whiteout
        F("opt/data/.wh.f"),
        F(".wh.link"),  # removes the symlink itself, never its target
        F(".wh.gone-dir"),  # a whole directory
        F("first/.wh..wh..opq"), F("first/new", b"n"),  # opaque marker before this layer's entries
        D("last/"), F("last/new", b"n"), D("last/same/"), F("last/same/upper", b"u"),
        F("last/.wh..wh..opq"),  # ... and after them
        F("etc/.wh.never-existed"),
        F("nodir/.wh.whatever"),
    ]))  # fmt: skip
    assert not (root / "etc/motd").exists() and (root / "etc/keep").exists()
    assert not (root / "opt/data/f").exists() and (root / "opt/data/sub/g").exists()
    assert not os.path.lexists(root / "link") and Path("/etc").is_dir()
    assert not (root / "gone-dir").exists()
    assert sorted(os.listdir(root / "first")) == ["new"]
    assert sorted(os.listdir(root / "last")) == ["new", "same"]
    assert sorted(os.listdir(root / "last/same")) == ["upper"]  # lower content of a re-created dir is hidden
    assert not any(n.startswith(".wh.") for _, ds, fs in os.walk(root) for n in ds + fs)


def test_whiteout_then_recreate_in_same_layer(root: Path, mk) -> None:
    apply_layer(root, mk([D("d/"), F("d/old", b"o"), F("f", b"old")]))
    apply_layer(root, mk([F(".wh.d"), D("d/"), F("d/new", b"n"), F(".wh.f"), F("f", b"new")]))
    assert os.listdir(root / "d") == ["new"]
    assert (root / "f").read_bytes() == b"new"


# -- hostile layers ------------------------------------------------------------------------------


def _snapshot(base: Path, skip: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            continue
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p == skip:
                continue
            st = p.lstat()
            data = p.read_bytes() if stat.S_ISREG(st.st_mode) else None
            out[str(p)] = (st.st_mode, st.st_nlink, st.st_size, st.st_mtime_ns, st.st_ino, data)
    return out


HOST_NAME = f"forklift-unpack-test-{uuid.uuid4().hex}"

# name -> (layers as lists of entries; "{bait}" is replaced with the absolute bait directory)
HOSTILE: dict[str, list[list[E]]] = {
    "dotdot": [[F("../dotdot.txt", b"pwned")]],
    "dotdot-deep": [[F("a/../../escape", b"pwned")]],
    "dotdot-far": [[F("../../../../../../../../tmp/" + HOST_NAME, b"pwned")]],
    "symlink-abs-dir": [[S("evil", "{bait}"), F("evil/pwned", b"pwned")]],
    "symlink-rel-dir": [[D("x/"), S("x/up", "../../.."), F("x/up/escape.txt", b"pwned")]],
    "symlink-then-dir-entry": [[S("evil", "{bait}"), D("evil/sub/")]],
    "symlink-lower-layer": [[S("lib", "{bait}")], [F("lib/evil.so", b"pwned")]],
    "symlink-lower-then-mkdir": [[S("lib", "{bait}")], [D("lib/sub/"), F("lib/sub/f", b"pwned")]],
    "hardlink-dotdot": [[H("passwd", "../../etc/passwd")]],
    "hardlink-host-abs": [[H("secret", "{bait}/secret.txt")]],
    "hardlink-through-symlink": [[S("evil", "{bait}"), H("stolen", "evil/secret.txt")]],
    "hardlink-to-dir": [[D("d/"), H("d2", "d")]],
    "whiteout-through-symlink": [[S("evil", "{bait}"), F("evil/.wh.secret.txt")]],
    "opaque-through-symlink": [[S("evil", "{bait}")], [F("evil/.wh..wh..opq")]],
    "whiteout-dotdot": [[F(".wh..."), F("x")]],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_layers_fail_and_leave_host_untouched(case: str, tmp_path: Path) -> None:
    base = tmp_path / "host"
    root = base / "a" / "b" / "root"  # deep, so '../..' paths land in bait territory
    root.mkdir(parents=True)
    bait = base / "bait"
    bait.mkdir()
    (bait / "secret.txt").write_text("secret")
    (bait / "keep").mkdir()
    (base / "a" / "dotdot.txt").write_text("original")
    before = _snapshot(base, root)
    passwd = os.stat("/etc/passwd")
    with pytest.raises(LayerError) as err:
        for entries in HOSTILE[case]:
            for e in entries:
                e.info.name = e.info.name.replace("{bait}", str(bait))
                e.info.linkname = e.info.linkname.replace("{bait}", str(bait))
            layer = write_layer(tmp_path / "blobs", tar_bytes(entries), "gzip")
            apply_layer(root, layer)
    assert layer.digest in str(err.value)
    assert _snapshot(base, root) == before
    assert os.stat("/etc/passwd") == passwd
    assert not os.path.lexists(f"/tmp/{HOST_NAME}")


def test_harmless_tricks_stay_inside_root(tmp_path: Path, root: Path, mk) -> None:
    """Things that look hostile but are applied inside the root, never following a symlink."""
    bait = tmp_path / "bait"
    bait.mkdir(mode=0o755)
    (bait / "target.txt").write_text("target")
    before = _snapshot(bait, root)
    passwd = os.stat("/etc/passwd")
    apply_layer(root, mk([
        F(f"/{HOST_NAME}", b"abs"),  # leading '/' is stripped
        F("/etc/../x/./y", b"y"),  # '..' that stays inside is fine
        S("evil", str(bait / "target.txt")), F("evil", b"replaced the symlink"),  # not written through
        S("evil-dir", str(bait)), D("evil-dir/", mode=0o700),  # dir replaces the symlink; bait mode untouched
        S("pw", "/etc/passwd"), H("pw-link", "pw"),  # links the symlink itself
    ]))  # fmt: skip
    assert (root / HOST_NAME).read_bytes() == b"abs" and not os.path.lexists(f"/{HOST_NAME}")
    assert (root / "x/y").read_bytes() == b"y"
    assert (root / "evil").read_bytes() == b"replaced the symlink"
    assert (root / "evil-dir").is_dir() and not (root / "evil-dir").is_symlink()
    assert os.readlink(root / "pw-link") == "/etc/passwd"
    assert _snapshot(bait, root) == before
    assert os.stat("/etc/passwd") == passwd


# -- streams, compression, integrity --------------------------------------------------------------

ENTRIES = [D("d/"), F("d/small", b"hello"), F("d/big", bytes(range(256)) * 20000), S("d/l", "small")]


@pytest.mark.parametrize("comp", ["gzip", "zstd", "tar"])
def test_compressions(comp: str, root: Path, mk) -> None:
    apply_layer(root, mk(ENTRIES, comp))
    assert (root / "d/big").read_bytes() == bytes(range(256)) * 20000
    assert (root / "d/small").read_bytes() == b"hello"


def test_compression_sniffed_despite_media_type(root: Path, mk) -> None:
    apply_layer(root, mk(ENTRIES, "zstd", media_type=MEDIA["gzip"]))
    assert (root / "d/small").read_bytes() == b"hello"


def test_multi_member_gzip(root: Path, tmp_path: Path) -> None:
    tar = tar_bytes(ENTRIES)
    blob = gzip.compress(tar[:10000]) + gzip.compress(tar[10000:]) + b"\0" * 100
    apply_layer(root, write_layer(tmp_path / "blobs", tar, blob=blob))
    assert (root / "d/small").read_bytes() == b"hello"


def test_diff_id_verified(root: Path, mk) -> None:
    apply_layer(root, mk(ENTRIES))  # correct diff_id passes
    bad = mk(ENTRIES, diff_id="sha256:" + "0" * 64)
    with pytest.raises(LayerError, match=f"{bad.digest}: diff_id mismatch"):
        apply_layer(root, bad)


@pytest.mark.parametrize("comp", ["gzip", "zstd", "tar"])
def test_truncated_layers_are_errors(comp: str, root: Path, tmp_path: Path) -> None:
    tar = tar_bytes(ENTRIES)
    blob = compress(tar, comp)
    cut = blob[: len(blob) // 2]
    layer = write_layer(tmp_path / "blobs", tar, comp, blob=cut, diff_id=None)
    with pytest.raises(LayerError, match=layer.digest):
        apply_layer(root, layer)


@pytest.mark.parametrize("blob", [b"", b"not a tar at all" * 100, b"\x1f\x8b\x08garbage" * 10])
def test_garbage_is_an_error(blob: bytes, root: Path, tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "blobs", b"", "tar", blob=blob, diff_id=None)
    with pytest.raises(LayerError, match=layer.digest):
        apply_layer(root, layer)


def test_tar_without_end_blocks_is_accepted(root: Path, tmp_path: Path) -> None:
    """`umoci insert` writes layers whose last member lacks padding and end-of-archive blocks."""
    tar = tar_bytes([F("a", b"x" * 1000), F("b", b"y" * 1001)])
    body = tar[: 512 + 1024 + 512 + 1001]  # headers + data, no padding/end blocks
    assert body.endswith(b"y" * 1001)
    apply_layer(root, write_layer(tmp_path / "blobs", body, "gzip"))
    assert (root / "b").read_bytes() == b"y" * 1001
    with pytest.raises(LayerError, match="unexpected end of data"):
        apply_layer(root, write_layer(tmp_path / "blobs", body[:-10], "gzip"))


def test_chain_ids_known_values() -> None:
    # expected values from: printf 'sha256:aaaa sha256:bbbb' | sha256sum, and so on
    assert chain_ids([]) == []
    assert chain_ids(["sha256:aaaa"]) == ["sha256:aaaa"]
    assert chain_ids(["sha256:aaaa", "sha256:bbbb", "sha256:cccc"]) == [
        "sha256:aaaa",
        "sha256:2c4d8760379f05d0ad1ed610712309f0114e7345e6e6a351494cff030ffdf197",
        "sha256:10f847b3ece58353f298bec20c58125235b631360ad43ac162131980750211ff",
    ]


# -- rootfs cache -----------------------------------------------------------------------------------


@pytest.fixture
def two_layers(mk) -> list[Layer]:
    return [mk([F("etc/motd", b"hi"), F("base", b"b")]), mk([F("etc/.wh.motd"), F("top", b"t")])]


def test_rootfs_cache_reuse_list_remove(tmp_path: Path, two_layers: list[Layer], monkeypatch) -> None:
    calls = []
    real = unpack.apply_layer
    monkeypatch.setattr(unpack, "apply_layer", lambda r, layer, **kw: (calls.append(layer), real(r, layer, **kw)))
    cache = RootfsCache(tmp_path / "rootfs")
    assert cache.list() == []
    path = cache.get_or_unpack(two_layers)
    chain = chain_ids([la.diff_id for la in two_layers])[-1]
    assert path == tmp_path / "rootfs" / chain.split(":")[1]
    assert sorted(os.listdir(path)) == ["base", "etc", "top"] and os.listdir(path / "etc") == []
    assert cache.get_or_unpack(two_layers) == path
    assert len(calls) == 2
    assert cache.list() == [chain]
    # a different chain (prefix only) gets its own directory
    assert cache.get_or_unpack(two_layers[:1]) != path
    assert len(cache.list()) == 2
    cache.remove(chain)
    assert not path.exists() and len(cache.list()) == 1
    cache.remove(chain)  # removing twice is fine


def test_rootfs_cache_failed_unpack_leaves_nothing(tmp_path: Path, mk) -> None:
    cache = RootfsCache(tmp_path / "rootfs")
    with pytest.raises(LayerError):
        cache.get_or_unpack([mk([F("ok", b"1")]), mk([F("../bad", b"2")])])
    assert cache.list() == [] and [p for p in (tmp_path / "rootfs").iterdir() if not p.name.endswith(".lock")] == []


def test_rootfs_cache_concurrent_threads_unpack_once(tmp_path: Path, two_layers: list[Layer], monkeypatch) -> None:
    calls = []
    real = unpack.apply_layer

    def slow_apply(r, layer, **kw):
        calls.append(layer)
        time.sleep(0.3)
        real(r, layer, **kw)

    monkeypatch.setattr(unpack, "apply_layer", slow_apply)
    cache = RootfsCache(tmp_path / "rootfs")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_unpack(two_layers))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1
    assert len(calls) == len(two_layers)  # one unpack
    assert (results[0] / "top").read_bytes() == b"t"


def test_rootfs_cache_concurrent_processes_unpack_once(tmp_path: Path, two_layers: list[Layer]) -> None:
    log = tmp_path / "unpacks.log"
    specs = [(str(la.path), la.digest, la.media_type, la.diff_id) for la in two_layers]
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from forklift.images import unpack
        real = unpack.apply_layer
        def counted(r, layer, **kw):
            with open({str(log)!r}, "a") as f:
                f.write(layer.digest + "\\n")
            time.sleep(0.3)
            real(r, layer, **kw)
        unpack.apply_layer = counted
        layers = [unpack.Layer(Path(p), d, m, i) for p, d, m, i in {specs!r}]
        print(unpack.RootfsCache(Path({str(tmp_path / "rootfs")!r})).get_or_unpack(layers))
    """)  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    assert len(log.read_text().split()) == len(two_layers)


class _Stopped(Exception):
    pass


def _abort_when(flag: threading.Event):
    def abort() -> None:
        if flag.is_set():
            raise _Stopped()
    return abort


def test_rootfs_cache_gives_up_waiting_for_a_lock_another_pull_holds(tmp_path: Path, two_layers: list[Layer]) -> None:
    cache = RootfsCache(tmp_path / "rootfs")
    chain = chain_ids([la.diff_id for la in two_layers])[-1].split(":")[1]
    stop, outcome = threading.Event(), []
    cache.directory.mkdir()

    def second_pull() -> None:
        try:
            outcome.append(cache.get_or_unpack(two_layers, abort=_abort_when(stop)))
        except _Stopped as e:
            outcome.append(e)

    with unpack.locked(cache._lock_path(chain)):  # the first pull, held up by its own downloads
        waiter = threading.Thread(target=second_pull, daemon=True)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and outcome == []  # waits for the lock while nothing stops it
        stop.set()
        waiter.join(30)
        assert not waiter.is_alive(), "the stopped unpack still waits for the lock"
    assert len(outcome) == 1 and isinstance(outcome[0], _Stopped)
    assert cache.list() == []


def test_rootfs_cache_stops_between_entries_of_a_layer(tmp_path: Path, mk) -> None:
    cache = RootfsCache(tmp_path / "rootfs")
    big = mk([F(f"f{i}", b"x") for i in range(50)])
    seen = []

    def abort() -> None:
        seen.append(1)
        if len(seen) > 10:  # a stop asked for part-way through the layer
            raise _Stopped()

    with pytest.raises(_Stopped):
        cache.get_or_unpack([big], abort=abort)
    assert len(seen) == 11  # not left to the end of the layer
    assert cache.list() == [] and [p for p in (tmp_path / "rootfs").iterdir() if not p.name.endswith(".lock")] == []


def test_rootfs_cache_rejects_bad_ids(tmp_path: Path, mk) -> None:
    cache = RootfsCache(tmp_path / "rootfs")
    with pytest.raises(ValueError):
        cache.remove("sha256:../../etc")
    with pytest.raises(LayerError, match="diff_id required"):
        cache.get_or_unpack([mk([F("a")], diff_id=None)])


# -- cross-check against umoci ----------------------------------------------------------------------


def _umoci_image(tmp_path: Path) -> tuple[Path, str]:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", src / "bin/busybox")
    applets = subprocess.run([src / "bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("/bin/busybox", src / "bin" / applet)
    for d, mode in [("etc", 0o755), ("tmp", 0o1777), ("root", 0o700), ("opt/data", 0o755), ("opt/app/lib", 0o750)]:
        (src / d).mkdir(parents=True, exist_ok=True)
        os.chmod(src / d, mode)
    (src / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (src / "etc/motd").write_text("welcome\n")
    (src / "opt/data/old.csv").write_text("1,2\n")
    (src / "opt/app/lib/mod.py").write_text("x = 1\n")
    (src / "opt/app/run").write_text("#!/bin/sh\n")
    os.chmod(src / "opt/app/run", 0o4755)
    os.link(src / "opt/app/run", src / "opt/app/run2")
    os.mkfifo(src / "opt/fifo", 0o600)
    os.symlink("../etc/passwd", src / "opt/rel-link")
    if IS_ROOT:
        os.chown(src / "opt/app/lib/mod.py", 1000, 1000)
    upper = tmp_path / "upper"
    (upper / "data").mkdir(parents=True)
    (upper / "data/new.csv").write_text("3,4\n")
    layout = tmp_path / "layout"

    def run(*args: str | Path) -> None:
        subprocess.run(["umoci", *map(str, args)], check=True, capture_output=True)

    run("init", "--layout", layout)
    run("new", "--image", f"{layout}:t")
    run("insert", "--image", f"{layout}:t", src, "/")
    run("insert", "--image", f"{layout}:t", "--whiteout", "/etc/motd")
    run("insert", "--image", f"{layout}:t", "--opaque", upper / "data", "/opt/data")
    return layout, "t"


def _layers_of(layout: Path, tag: str) -> list[Layer]:
    def blob(digest: str) -> Path:
        return layout / "blobs" / digest.replace(":", "/")

    index = json.loads((layout / "index.json").read_text())
    desc = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag)
    manifest = json.loads(blob(desc["digest"]).read_text())
    config = json.loads(blob(manifest["config"]["digest"]).read_text())
    return [Layer(blob(la["digest"]), la["digest"], la["mediaType"], d)
            for la, d in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True)]  # fmt: skip


def test_matches_umoci_unpack(tmp_path: Path) -> None:
    if shutil.which("umoci") is None:
        print("umoci is not installed: cannot cross-check")
        pytest.skip("umoci is not installed")
    layout, tag = _umoci_image(tmp_path)
    bundle = tmp_path / "bundle"
    cmd = ["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)]
    if not IS_ROOT:
        cmd.insert(2, "--rootless")
    subprocess.run(cmd, check=True, capture_output=True)
    ours = tmp_path / "ours"
    ours.mkdir()
    for layer in _layers_of(layout, tag):
        apply_layer(ours, layer)
    theirs, mine = tree(bundle / "rootfs"), tree(ours)
    assert set(mine) == set(theirs)
    assert mine == theirs
    assert "etc/motd" not in mine and "opt/data/new.csv" in mine and "opt/data/old.csv" not in mine
    for rel in mine:  # mtimes of everything but directories, which umoci sets the same way
        a, b = (bundle / "rootfs" / rel).lstat(), (ours / rel).lstat()
        if not stat.S_ISDIR(a.st_mode):
            assert int(a.st_mtime) == int(b.st_mtime), rel

    def inode(base: Path) -> set[int]:
        return {(base / p).lstat().st_ino for p in ("opt/app/run", "opt/app/run2")}

    assert len(inode(ours)) == 1 == len(inode(bundle / "rootfs"))

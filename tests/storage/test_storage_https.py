"""Read-only https:// (here http:// on loopback) sources: download, stream, list; writes refused."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from forklift.storage import (
    NoSuchKey,
    ReadOnlyStore,
    copy_object,
    extract_tar_gz,
    pack_tar_gz,
    stage_channel,
    store_for,
)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_model_data_url_over_http(storage_home: Path, web_root, tmp_path: Path):
    root, url = web_root
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.pkl").write_bytes(b"m" * 200_000)
    pack_tar_gz(model, root / "model.tar.gz")
    store = store_for(f"{url}/model.tar.gz")

    assert store.exists(f"{url}/model.tar.gz") and not store.exists(f"{url}/other.tar.gz")
    [info] = store.list(f"{url}/model.tar.gz")
    assert info.size == (root / "model.tar.gz").stat().st_size
    with store.open_read(f"{url}/model.tar.gz") as stream:
        assert stream.read(2) == b"\x1f\x8b"  # gzip magic

    copy_object(f"{url}/model.tar.gz", str(tmp_path / "fetched.tar.gz"))
    extract_tar_gz(tmp_path / "fetched.tar.gz", tmp_path / "opt-ml-model")
    assert (tmp_path / "opt-ml-model" / "model.pkl").read_bytes() == b"m" * 200_000

    channel = stage_channel({"S3DataSource": {"S3Uri": f"{url}/model.tar.gz", "S3DataType": "S3Prefix"}},
                            tmp_path / "channel")
    assert [p.name for p in channel.path.iterdir()] == ["model.tar.gz"]

    with pytest.raises(NoSuchKey):
        store.download(f"{url}/missing", tmp_path / "missing")
    with pytest.raises(ReadOnlyStore, match="read only"):
        store.upload(tmp_path / "fetched.tar.gz", f"{url}/upload")

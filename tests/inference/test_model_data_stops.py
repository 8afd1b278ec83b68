"""A model download given up by DeleteEndpoint (or by ModelDataDownloadTimeoutInSeconds) goes on in
its own thread until its source answers; what it fetched then must land nowhere: not in the deleted
endpoint's generation directory, where a re-created endpoint of the same name would serve it."""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.stallserver import GatedHttp
from forklift.cancel import Cancel, Cancelled
from forklift.config import load_settings
from forklift.control.inference.instances import fetch_model_data, remove_model_dirs

WAIT = 60.0  # a generous bound on every wait below


def model_archive(name: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = b"w" * 4096
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@pytest.fixture
def source() -> Iterator[GatedHttp]:
    served = GatedHttp(model_archive("old-model.bin"))
    yield served
    served.close()


def download_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "model-data-Primary"]


def test_a_download_given_up_by_a_delete_puts_nothing_in_place(tmp_path: Path, monkeypatch, source) -> None:
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "home"))
    settings = load_settings()
    directory = tmp_path / "home" / "endpoints" / "ep"
    directory.mkdir(parents=True)
    variant = {"VariantName": "Primary"}
    container = {"ModelDataUrl": source.url}
    cancel, outcome = Cancel(), []

    def create() -> None:
        try:
            outcome.append(fetch_model_data(settings, directory, variant, container, 1, lambda path: None, cancel))
        except Cancelled as exc:
            outcome.append(exc)

    creating = threading.Thread(target=create, daemon=True)
    creating.start()
    assert source.asked.wait(WAIT), "the download never asked for the model data"
    cancel.set()  # DeleteEndpoint
    creating.join(WAIT)
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    remove_model_dirs(directory)  # what the delete does next
    abandoned = download_threads()
    source.release()  # the source answers after all
    assert source.answered.wait(WAIT)
    for thread in abandoned:
        thread.join(WAIT)
        assert not thread.is_alive(), "the abandoned download never ended"
    assert sorted(p.name for p in directory.iterdir() if not p.name.endswith(".lock")) == []


def test_a_timed_out_download_puts_nothing_in_place(tmp_path: Path, monkeypatch, source) -> None:
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "home"))
    settings = load_settings()
    directory = tmp_path / "home" / "endpoints" / "ep"
    directory.mkdir(parents=True)
    variant = {"VariantName": "Primary", "ModelDataDownloadTimeoutInSeconds": 1}
    with pytest.raises(Exception, match="ModelDataDownloadTimeoutInSeconds"):
        fetch_model_data(settings, directory, variant, {"ModelDataUrl": source.url}, 1, lambda path: None)
    abandoned = download_threads()
    source.release()
    assert source.answered.wait(WAIT)
    for thread in abandoned:
        thread.join(WAIT)
        assert not thread.is_alive(), "the abandoned download never ended"
    # a later attempt at the same generation (an update retried) finds no half-trusted directory
    assert not (directory / "Primary-g1" / "extracted").exists()
    assert list(directory.glob(".downloading-*")) == []

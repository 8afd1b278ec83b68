"""What a leftover check must not take for a leftover: an overlay a live container uses, recorded
under a FORKLIFT_HOME reached through a symlink, and a runtime index entry whose container is being
created right now (claimed before its state directory exists); and that removing a stale index
entry reads it again and only forgets it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from forklift.control import leftovers
from forklift.runtime import RuncRuntime, overlay, residue


def settled(path: Path) -> None:
    old = time.time() - residue.SETTLE_SECONDS - 60
    os.utime(path, (old, old))


@pytest.fixture
def runtime(tmp_path) -> RuncRuntime:
    runtime = RuncRuntime(state_root=tmp_path / "state", runc_root=tmp_path / "runc")
    runtime.index_dir.mkdir(parents=True)
    return runtime


def test_an_overlay_recorded_through_a_symlinked_home_is_in_use(tmp_path, busybox_rootfs):
    if os.geteuid() != 0:
        pytest.skip("mounting an overlay needs root")
    (tmp_path / "real").mkdir()
    home = tmp_path / "link"
    home.symlink_to(tmp_path / "real")
    state = home / "endpoints" / "e" / ".." / "e" / "instances" / "ep-live"  # as a server recorded it
    layers = overlay.Overlay.under(busybox_rootfs, state)
    overlay.mount(layers)
    try:
        mounts = residue.mounts_under(home, fstype="overlay")
        known = {"forklift-ep-live": residue.Known("forklift-ep-live", state.absolute(), True, True)}
        assert [str(m) for m in mounts] == [os.path.realpath(layers.merged)]
        assert leftovers._mounts(mounts, known) == []
    finally:
        overlay.unmount(layers)


def test_an_index_entry_just_claimed_is_not_judged(runtime, tmp_path):
    entry = runtime.index_dir / "forklift-ep-new.json"
    entry.write_text(json.dumps({"state_dir": str(tmp_path / "not-made-yet")}))
    (item,) = residue.known_containers(runtime).values()
    assert not residue.stale_index_entry(runtime, item)
    settled(entry)
    assert residue.stale_index_entry(runtime, item)


def test_removing_a_stale_index_entry_reads_it_again_and_only_forgets_it(runtime, tmp_path):
    state = tmp_path / "other-home" / "instances" / "ep-x"
    entry = runtime.index_dir / "forklift-ep-x.json"
    entry.write_text(json.dumps({"state_dir": str(state)}))
    settled(entry)
    (item,) = residue.known_containers(runtime).values()
    assert residue.stale_index_entry(runtime, item)
    state.mkdir(parents=True)  # its container is being made after all (the name taken over)
    (state / "container.json").write_text("{}")
    residue.remove_index_entry(runtime, item.id)
    assert entry.exists()
    state.rename(tmp_path / "gone")
    residue.remove_index_entry(runtime, item.id)
    assert not entry.exists()

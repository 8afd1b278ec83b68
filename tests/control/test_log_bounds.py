"""A container's log stream on disk is bounded: rotated event files keep the newest `max_bytes`
with absolute positions, and the pump skips ahead of a flood and gives the copied part of the
container's output files back to the disk (real files; tmp_path is a disk that punches holes)."""

from __future__ import annotations

import pytest

from forklift.control.eventlog import EventWriter, LogLimits, StreamFiles, segments
from forklift.control.logs import EVENTS_FILE, LogPump

KiB, MiB = 1 << 10, 1 << 20


def test_rotated_files_keep_the_newest_events_at_their_positions(tmp_path):
    limits = LogLimits(max_bytes=64 * KiB, files=4)
    live = tmp_path / EVENTS_FILE
    writer = EventWriter(live, limits)
    for batch in range(200):
        writer.append([(1000 + batch, f"line {batch * 10 + i} " + "x" * 40) for i in range(10)])
    kept = segments(live)
    assert 2 <= len(kept) <= limits.files
    assert sum(path.stat().st_size for _, path in kept) <= limits.max_bytes + limits.file_bytes
    files = StreamFiles(live)
    oldest, after_oldest = files.read(0, 1)
    assert after_oldest == kept[0][0] + 1 > 1  # the first events were dropped; positions did not move
    assert oldest[0].message.startswith(f"line {kept[0][0]} ")
    (last,), end = files.read(-1, 1)
    assert last.message.startswith("line 1999 ") and end == 2000
    page, next_index = files.read(kept[1][0] - 3, 6)  # across a file boundary
    assert [e.message.split()[1] for e in page] == [str(i) for i in range(kept[1][0] - 3, kept[1][0] + 3)]
    assert next_index == kept[1][0] + 3


def test_the_pump_skips_ahead_of_a_flood_and_releases_what_it_copied(tmp_path):
    output = tmp_path / "stdout.log"
    with open(output, "wb") as f:
        for i in range(40_000):
            f.write(b"flood line %06d %s\n" % (i, b"y" * 500))
        f.write(b"the end\n")
    stream = tmp_path / "stream"
    stream.mkdir()
    limits = LogLimits(max_bytes=1 * MiB, files=2)
    pump = LogPump(stream, [output], limits)
    pump.drain(final=True)
    files = StreamFiles(stream / EVENTS_FILE)
    first, _ = files.read(0, 1)
    assert first[0].message.startswith("[forklift: ") and "of output dropped" in first[0].message
    (last,), _ = files.read(-1, 1)
    assert last.message == "the end"
    assert files.size() <= limits.max_bytes + limits.file_bytes + 64 * KiB
    stat = output.stat()
    assert stat.st_size > 19 * MiB  # the container's appends and the offsets go on as before
    assert stat.st_blocks * 512 < 1 * MiB, "the copied output still holds its disk blocks"
    with open(output, "ab") as f:
        f.write(b"after the release\n")
    pump.drain()
    (last,), _ = files.read(-1, 1)
    assert last.message == "after the release"


def test_config_toml_sets_the_containers_bounds_and_refuses_a_wrong_one(tmp_path):
    from forklift.config import ConfigError, Settings
    from forklift.control.settings import DEFAULT_PIDS_LIMIT, control_settings

    settings = Settings(home=tmp_path)
    assert control_settings(settings).pids_limit == DEFAULT_PIDS_LIMIT
    assert control_settings(settings).log_limits == LogLimits()
    (tmp_path / "config.toml").write_text('[containers]\npids_limit = 256\nlog_max_bytes = "8 MiB"\nlog_files = 2\n')
    read = control_settings(settings)
    assert (read.pids_limit, read.log_limits) == (256, LogLimits(8 * MiB, 2))
    (tmp_path / "config.toml").write_text("[containers]\nlog_files = 1\n")
    with pytest.raises(ConfigError, match="log_files"):
        control_settings(settings)

"""A container's log stream on disk is bounded: rotated event files keep the newest `max_bytes`
with absolute positions, and the pump skips ahead of a flood and gives the copied part of the
container's output files back to the disk (real files; tmp_path is a disk that punches holes)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from forklift.control.eventlog import EventWriter, LogLimits, StreamFiles, rotated, segments
from forklift.control.logs import EVENTS_FILE, LogPump, release_copied

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


def _numbered(writer: EventWriter, start: int, count: int) -> None:
    """Events whose message is their position: a reader can tell a wrong one."""
    writer.append([(1000, str(i)) for i in range(start, start + count)])


def _assert_at_positions(events, next_index: int) -> None:
    assert [e.message for e in events] == [str(i) for i in range(next_index - len(events), next_index)]


def test_a_read_keeps_its_files_open_so_a_rotation_meanwhile_changes_nothing(tmp_path):
    live = tmp_path / EVENTS_FILE
    writer = EventWriter(live, LogLimits(max_bytes=16 * KiB, files=4))
    _numbered(writer, 0, 300)
    files = StreamFiles(live)
    parts = files._snapshot()
    _numbered(writer, 300, 300)  # fills the live file read below, which is then renamed; new ones follow
    firsts = [first for first, _ in segments(live)]
    assert parts[-1].first in firsts[:-1]
    try:
        events, next_index = files._read(parts, 250, 100)
    finally:
        for part in parts:
            part.handle.close()
    # As far as that file goes: the next one begins at the index it was renamed after.
    assert next_index == min(350, firsts[firsts.index(parts[-1].first) + 1])
    _assert_at_positions(events, next_index)
    events, next_index = files.read(next_index, 400)
    assert next_index == 600
    _assert_at_positions(events, next_index)


def test_a_read_that_listed_the_files_before_a_rotation_looks_again(tmp_path):
    live = tmp_path / EVENTS_FILE
    writer = EventWriter(live, LogLimits(max_bytes=16 * KiB, files=4))
    _numbered(writer, 0, 300)
    files = StreamFiles(live)
    listed = rotated(live)
    _numbered(writer, 300, 100)  # a rotation, then a new live file with its own first index
    assert rotated(live)[-1:] != listed[-1:]
    assert files._open(listed) is None  # else the new live file would be paired with the old first index
    events, next_index = files.read(-50, 50)
    assert next_index == 400
    _assert_at_positions(events, next_index)


def test_a_new_live_file_is_read_from_its_own_lines(tmp_path):
    """Rotation deletes the oldest file and begins a live one, which often gets the deleted one's
    inode (ext4): what a reader remembered of the live file it read last must not apply to it. The
    reader reads again whenever the live file is a new one on the inode it last read, and larger."""
    live = tmp_path / EVENTS_FILE
    writer = EventWriter(live, LogLimits(max_bytes=8 * KiB, files=2))
    files = StreamFiles(live)
    written, last_read = 0, None
    for round_ in range(200):
        # Lines of another length each round: remembered line offsets do not fit a new file.
        writer.append([(1000, f"{i} " + "x" * (round_ % 5 * 7)) for i in range(written, written + 23)])
        written += 23
        if not live.exists():
            continue
        stat, first = live.stat(), segments(live)[-1][0]
        if last_read is None or (last_read[0] == stat.st_ino and last_read[1] != first and stat.st_size > last_read[2]):
            events, next_index = files.read(-40, 40)
            assert next_index == written
            assert [e.message.split()[0] for e in events] == [str(i) for i in range(max(0, written - 40), written)]
            last_read = (stat.st_ino, first, stat.st_size)


def test_a_file_that_can_never_be_opened_fails_the_read_naming_the_stream(tmp_path):
    live = tmp_path / EVENTS_FILE
    EventWriter(live, LogLimits(max_bytes=16 * KiB, files=4)).append([(1000, "kept")])
    (tmp_path / f"{EVENTS_FILE}.0").symlink_to(tmp_path / "nowhere")  # listed every time, never opened
    with pytest.raises(OSError, match="cannot be read.*remove the broken one"):
        StreamFiles(live).read(0, 10)


def test_readers_racing_the_writer_get_the_events_at_the_positions_they_return(tmp_path):
    live = tmp_path / EVENTS_FILE
    writer = EventWriter(live, LogLimits(max_bytes=16 * KiB, files=4))  # a rotation every ~300 events
    total = 30_000
    done = threading.Event()

    def write():
        for start in range(0, total, 10):
            _numbered(writer, start, 10)
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    files = StreamFiles(live)
    position, reads = 0, 0
    try:
        while position < total:
            finished = done.is_set()
            events, next_index = files.read(position, 50)
            reads += 1
            assert next_index >= position, f"the position went back from {position} to {next_index}"
            _assert_at_positions(events, next_index)
            assert not finished or next_index > position or position == total
            position = next_index
    finally:
        thread.join(timeout=60)
    assert position == total and reads > 1


def test_output_on_a_filesystem_that_cannot_punch_holes_is_reported_once(tmp_path, caplog):
    device = Path("/dev/null")  # fallocate refuses a device the way it does a filesystem without holes
    with pytest.raises(OSError):
        release_copied(device, 1 * MiB)
    stream = tmp_path / "stream"
    stream.mkdir()
    pump = LogPump(stream, [device])
    with caplog.at_level(logging.WARNING, logger="forklift.control.logs"):
        pump._release(device, 1 * MiB)
        pump._release(device, 2 * MiB)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "/dev/null" in warnings[0] and "cannot punch holes" in warnings[0]


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

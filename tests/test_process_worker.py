"""``worker="process"``: a real RunEngine, its documents through the shared-memory ring into a writer
process, every format read back with stock readers; the checks at ``start`` still raise in the scan;
a document larger than the ring; a full ring with ``overflow="discard_oldest"`` (the writer process
held with a real SIGSTOP)."""

from __future__ import annotations

import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from bluesky import plans as bp
from documents import events
from formats import CSV_OUTPUT, FORMATS, ZARR, OutputFormat, assert_holds, assert_on_their_grid
from ophyd.sim import det, motor1, motor2
from stand_ins import FrameCounter

from bluesky_zarr import (
    ArrowWriter,
    ConfigurationError,
    CSVWriter,
    HDF5Writer,
    ParquetWriter,
    StoreExistsError,
    UnsafePathError,
    Writer,
    ZarrWriter,
)

MOTORS = ["motor1", "motor2"]
RING = 32 * 1024**2


def segments() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith(f"bluesky_zarr_{os.getpid()}_")}


@pytest.mark.parametrize("fmt", [*FORMATS, CSV_OUTPUT], ids=lambda f: f.name)
def test_a_grid_scan_written_in_the_writer_process_is_whole(
    RE, record, tmp_path: Path, fmt: OutputFormat
) -> None:
    writer = fmt.writer(tmp_path, file_prefix="run", worker="process", ring_bytes=RING)
    assert writer._buffer.proc.poll() is None  # a process of its own
    RE.subscribe(writer)
    RE(bp.grid_scan([FrameCounter(shape=(32, 16)), det], motor1, 0, 1, 4, motor2, 0, 1, 5))
    # stop waited until the run was on disk: read before the writer is closed
    keys = ["det", "motor1", "motor2"] if fmt is CSV_OUTPUT else ["cam", "det", "motor1", "motor2"]
    assert_holds(fmt.readings(tmp_path, "run"), events(record), keys)
    assert_on_their_grid(
        fmt.readings(tmp_path, "run"), MOTORS, [list(np.linspace(0, 1, 4)), [0, 0.25, 0.5, 0.75, 1]]
    )
    if fmt is not CSV_OUTPUT:
        assert fmt.info(tmp_path, "run").status == "success"
    pid = writer._buffer.pid
    writer.close()
    writer.close()
    assert writer._buffer.proc.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: no orphan, no zombie
    assert segments() == set()


@pytest.mark.parametrize("cls", [ZarrWriter, ParquetWriter, ArrowWriter, HDF5Writer, CSVWriter])
def test_every_writer_takes_the_worker_options(cls: type[Writer], tmp_path: Path) -> None:
    options = {"data_keys": "scalars"} if cls is CSVWriter else {}
    with cls(tmp_path, worker="process", ring_bytes=RING, overflow="discard_oldest", **options) as writer:
        assert writer._config["worker"] == "process"
        assert writer._buffer.ring.capacity == RING
        assert writer._buffer.overflow == "discard_oldest"
    assert segments() == set()


def test_the_options_are_checked_where_the_writer_is_made(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="worker must be 'thread' or 'process'"):
        ZarrWriter(tmp_path, worker="fork")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="overflow must be"):
        ZarrWriter(tmp_path, worker="process", overflow="drop")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"does not fit in /dev/shm.*--shm-size"):
        ZarrWriter(tmp_path, worker="process", ring_bytes=2**60)
    with pytest.raises(ConfigurationError, match="does not pickle"):
        ZarrWriter(tmp_path, worker="process", handler_registry={"X": lambda *a: None})
    assert segments() == set()


def test_an_existing_output_and_a_bad_prefix_raise_in_the_scan_at_start(RE, tmp_path: Path) -> None:
    (tmp_path / "taken.zarr").mkdir()
    writer = ZarrWriter(tmp_path, file_prefix="taken", worker="process", ring_bytes=RING)
    RE.subscribe(writer)
    with pytest.raises(StoreExistsError, match=r"taken\.zarr exists already"):
        RE(bp.count([det], 3))
    writer.file_prefix = "../{start[scan_id]}"
    with pytest.raises(UnsafePathError):
        RE(bp.count([det], 3))
    writer.file_prefix = "fine"
    RE(bp.count([det], 3))  # the writer process goes on with the next run
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fine.zarr", "taken.zarr"]
    assert list((tmp_path / "taken.zarr").iterdir()) == []
    assert ZARR.info(tmp_path, "fine").status == "success"


def test_a_document_larger_than_the_ring_is_refused_naming_its_data_key(RE, tmp_path: Path) -> None:
    writer = ZarrWriter(tmp_path, file_prefix="big", worker="process", ring_bytes=1024**2)
    RE.subscribe(writer)
    with pytest.raises(
        ConfigurationError, match=r"data key 'cam' holds 2097152 bytes.*ring_bytes=1048576.*ring_bytes="
    ):
        RE(bp.count([FrameCounter(shape=(1024, 1024))], 2))
    writer.close()
    assert ZARR.info(tmp_path, "big").status == "fail"  # the RunEngine ended the run on that error


def test_a_full_ring_that_discards_the_oldest_says_so_in_the_run_and_at_stop(
    RE, record, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = ZarrWriter(
        tmp_path, file_prefix="lossy", worker="process", ring_bytes=1024**2, overflow="discard_oldest"
    )
    pid = writer._buffer.pid

    def hold(name, doc):
        if name == "event" and doc["seq_num"] == 1:
            writer.flush()  # the start and the descriptor are in the writer process
            os.kill(pid, signal.SIGSTOP)  # it takes nothing more: the ring fills up
        elif name == "event" and doc["seq_num"] == 60:
            os.kill(pid, signal.SIGCONT)

    RE.subscribe(writer)
    RE.subscribe(hold)
    with caplog.at_level(logging.WARNING, logger="bluesky_zarr"):
        RE(bp.count([FrameCounter(shape=(128, 128))], 80))  # 32 KiB frames: the ring holds ~31 events
    writer.close()
    dropped = [r.getMessage() for r in caplog.records if "discarded" in r.getMessage()]
    assert len(dropped) == 1 and "overflow='discard_oldest'" in dropped[0]
    info = ZARR.info(tmp_path, "lossy")
    assert info.status == "partial"
    assert any("event document(s) were discarded" in e for e in info.errors)
    count = int(dropped[0].split(": ")[1].split()[0])
    readings = ZARR.readings(tmp_path, "lossy")
    assert count > 0 and len(readings.rows) + count == 80
    # what was kept is the newest of each stretch: every kept event is whole
    kept = {r.seq_num for r in readings.rows}
    assert_holds(readings, [e for e in events(record) if e["seq_num"] in kept], ["cam"])


def test_overflow_block_makes_the_runengine_wait_and_loses_nothing(RE, record, tmp_path: Path) -> None:
    writer = ZarrWriter(tmp_path, file_prefix="held", worker="process", ring_bytes=1024**2)
    ring, pid = writer._buffer.ring, writer._buffer.pid
    waited = threading.Event()

    def release() -> None:  # the writer process goes on once the RunEngine waits for room
        deadline = time.monotonic() + 120
        while not ring.producer_waits and time.monotonic() < deadline:
            time.sleep(0.01)  # polls a state of the ring; nothing is timed
        waited.set()
        os.kill(pid, signal.SIGCONT)

    def hold(name, doc):
        if name == "event" and doc["seq_num"] == 1:
            writer.flush()
            os.kill(pid, signal.SIGSTOP)
            threading.Thread(target=release, daemon=True).start()

    RE.subscribe(writer)
    RE.subscribe(hold)
    RE(bp.count([FrameCounter(shape=(128, 128))], 80))  # the ring holds ~31 of its events
    writer.close()
    assert waited.is_set()
    assert ZARR.info(tmp_path, "held").status == "success"
    assert_holds(ZARR.readings(tmp_path, "held"), events(record), ["cam"])


def test_segments_of_processes_that_are_gone_are_removed_at_the_next_start(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as dead:
        dead.wait()
    left = Path(f"/dev/shm/bluesky_zarr_{dead.pid}_0badc0de")
    left.write_bytes(b"\0" * 4096)  # as both processes killed at once would leave it
    mine = Path(f"/dev/shm/bluesky_zarr_{os.getpid()}_0badc0de")
    mine.write_bytes(b"\0" * 4096)  # a live process's: kept
    try:
        ZarrWriter(tmp_path, worker="process", ring_bytes=RING).close()
        assert not left.exists()
        assert mine.exists()
    finally:
        left.unlink(missing_ok=True)
        mine.unlink(missing_ok=True)


def test_a_session_with_more_than_a_thousand_files_open_writes_in_a_writer_process(
    RE, record, tmp_path: Path
):
    """A long IPython session holds many files: descriptors above 1023, which ``select`` cannot watch."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit of open files here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        writer = ZarrWriter(tmp_path, worker="process", ring_bytes=RING)
        RE.subscribe(writer)
        (uid,) = RE(bp.count([det], 5))
        writer.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert ZARR.info(tmp_path, uid).status == "success"
    assert_holds(ZARR.readings(tmp_path, uid), events(record), ["det"])

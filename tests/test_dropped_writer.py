"""A writer nobody holds any more (made again in a notebook cell, never closed) is closed when it
is collected: its thread or writer process ends, and its open runs end ``incomplete`` with every
event it took."""

from __future__ import annotations

import gc
import os
import threading
import time

import numpy as np
import pytest
from bluesky import plans as bp
from formats import FORMATS
from ophyd.sim import det, motor


def wait_for(condition, seconds=60.0):
    """Wait, boundedly, for what the writer's own thread does in its own time."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    return condition()


def unfinished_scan(RE, record):
    """The documents of a real scan, but its stop: a run the writer must finish by itself."""
    RE(bp.scan([det], motor, -1, 1, 5))
    return [(name, doc) for name, doc in record if name != "stop"]


def writer_threads(other_than=frozenset()):
    return {t for t in threading.enumerate() if t.name.endswith("Writer")} - other_than


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_dropped_writers_end_their_threads_and_finish_their_runs(tmp_path, RE, record, fmt):
    documents = unfinished_scan(RE, record)
    before = writer_threads()
    writers = [fmt.writer(tmp_path / str(i), file_prefix="dropped") for i in range(30)]
    for writer in writers:
        for name, doc in documents:
            writer(name, doc)
    assert len(writer_threads(before)) == 30
    del writers, writer
    assert wait_for(lambda: not writer_threads(before)), writer_threads(before)
    for i in range(30):
        assert fmt.info(tmp_path / str(i), "dropped").status == "incomplete"
        np.testing.assert_array_equal(
            sorted(fmt.readings(tmp_path / str(i), "dropped").seq_nums()), [1, 2, 3, 4, 5]
        )


def shm_segments():
    return {name for name in os.listdir("/dev/shm") if name.startswith(f"bluesky_zarr_{os.getpid()}_")}


def test_a_dropped_process_writer_ends_its_process_and_leaves_no_segment(tmp_path, RE, record):
    (fmt,) = [f for f in FORMATS if f.name == "zarr"]
    documents = unfinished_scan(RE, record)
    segments = shm_segments()
    writer = fmt.writer(tmp_path, file_prefix="dropped", worker="process")
    process = writer._process.proc
    for name, doc in documents:
        writer(name, doc)
    del writer
    assert wait_for(lambda: process.poll() is not None)
    assert process.returncode == 0
    assert wait_for(lambda: shm_segments() == segments)
    assert fmt.info(tmp_path, "dropped").status == "incomplete"
    np.testing.assert_array_equal(sorted(fmt.readings(tmp_path, "dropped").seq_nums()), [1, 2, 3, 4, 5])

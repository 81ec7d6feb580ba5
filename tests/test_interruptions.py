"""Pause/resume, abort, failures and crashes: every point lands right and nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from bluesky import plans as bp
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import det, motor1, motor2
from scans import pause_after_saves, run_resuming
from stand_ins import FrameCounter
from stock import assert_tensorstore_agrees, open_stream, root_attrs

from bluesky_zarr import ZarrWriter


def test_pause_and_resume_place_every_point_and_keep_the_superseded_one(RE, record, tmp_path):
    cam = FrameCounter()
    RE.subscribe(ZarrWriter(tmp_path))
    plan = pause_after_saves(
        bp.grid_scan([cam, det], motor1, 0, 2, 3, motor2, 0, 1, 2, snake_axes=True), {2, 4}
    )
    run_resuming(RE, plan)
    uid = record[0][1]["uid"]
    evs = [d for n, d in record if n == "event"]
    assert len(evs) > 6  # points were taken again after the rewinds
    ds = open_stream(tmp_path / f"{uid}.zarr")
    last = {}
    for e in evs:  # the latest reading of each seq_num is the one on the grid
        last[e["seq_num"]] = e
    assert ds.written.values.all()
    for seq, e in last.items():
        index = np.argwhere(ds.seq_num.values == seq)
        (point,) = index
        np.testing.assert_array_equal(ds.cam.values[tuple(point)], e["data"]["cam"])
        assert ds.motor1_readback.values[tuple(point)] == e["data"]["motor1"]
    overflow = open_stream(tmp_path / f"{uid}.zarr", "primary/overflow")
    superseded = [e for e in evs if last[e["seq_num"]] is not e]
    assert len(superseded) == overflow.sizes["time"] >= 1
    np.testing.assert_array_equal(overflow.seq_num.values, [e["seq_num"] for e in superseded])
    np.testing.assert_array_equal(overflow.cam.values, np.stack([e["data"]["cam"] for e in superseded]))
    assert root_attrs(tmp_path / f"{uid}.zarr")["status"] == "success"
    assert_tensorstore_agrees(tmp_path / f"{uid}.zarr")


def test_aborted_scan_keeps_what_was_taken(RE, record, tmp_path):
    cam = FrameCounter()
    RE.subscribe(ZarrWriter(tmp_path))
    with pytest.raises(RunEngineInterrupted):
        RE(pause_after_saves(bp.grid_scan([cam], motor1, 0, 2, 3, motor2, 0, 1, 2), {4}))
    assert RE.state == "paused"
    RE.abort("the sample moved")
    uid = record[0][1]["uid"]
    store = tmp_path / f"{uid}.zarr"
    attrs = root_attrs(store)
    assert attrs["status"] == "abort" and attrs["stop"]["exit_status"] == "abort"
    ds = open_stream(store)
    evs = [d for n, d in record if n == "event"]
    assert int(ds.written.values.sum()) == len({e["seq_num"] for e in evs}) >= 4
    for e in evs:
        (point,) = np.argwhere(ds.seq_num.values == e["seq_num"])
        np.testing.assert_array_equal(ds.cam.values[tuple(point)], e["data"]["cam"])
    assert np.isnan(ds.time.values[~ds.written.values]).all()


CRASHING_SCAN = textwrap.dedent(
    """
    import sys, time
    from bluesky import RunEngine, plans as bp
    from ophyd.sim import motor1, motor2
    from stand_ins import FrameCounter
    from bluesky_zarr import ZarrWriter

    RE = RunEngine({})
    RE.subscribe(ZarrWriter(sys.argv[1], file_prefix="crash", flush_interval=0.05))

    def report(name, doc):
        if name == "event":
            print(doc["seq_num"], flush=True)
            time.sleep(0.05)

    RE.subscribe(report)
    RE(bp.grid_scan([FrameCounter(shape=(64, 64))], motor1, 0, 1, 20, motor2, 0, 1, 10))
    """
)


def test_killed_process_leaves_a_store_that_says_which_points_hold_data(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    with subprocess.Popen(
        [sys.executable, "-c", CRASHING_SCAN, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if int(line) >= 40:
                break
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    store = tmp_path / "crash.zarr"
    assert root_attrs(store)["status"] == "running"  # it never got to say otherwise
    ds = open_stream(store)
    written = ds.written.values
    assert 20 <= written.sum() < 200
    # every point the mask vouches for holds its frame; no fill value passes for a reading
    frames = ds.cam.values[written]
    seq = ds.seq_num.values[written]
    np.testing.assert_array_equal(frames[:, 0, 0], seq + 1)  # the camera's first frame is taken at creation
    assert_tensorstore_agrees(store)

"""Every format: pause/resume keeps every point, an abort keeps what was taken, and a killed writer
process leaves everything it flushed readable."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bluesky import plans as bp
from bluesky.utils import RunEngineInterrupted
from documents import events
from formats import Readings, assert_holds, assert_on_their_grid
from ophyd.sim import det, motor1, motor2
from processes import FLUSHED, GRID
from scans import pause_after_saves, run_resuming
from stand_ins import FrameCounter


def test_pause_and_resume_keep_every_point(RE, record, tmp_path, fmt):
    RE.subscribe(fmt.writer(tmp_path))
    plan = pause_after_saves(
        bp.grid_scan([FrameCounter(), det], motor1, 0, 2, 3, motor2, 0, 1, 2, snake_axes=True), {2, 4}
    )
    run_resuming(RE, plan)
    uid = record[0][1]["uid"]
    evs = events(record)
    assert len(evs) > 6 and len({e["seq_num"] for e in evs}) < len(evs)  # points were taken again
    readings = fmt.readings(tmp_path, uid)
    assert_holds(readings, evs, ["cam", "det", "motor1", "motor2"])  # every reading is kept
    assert_on_their_grid(readings, ["motor1", "motor2"], [[0, 1, 2], [0, 1]])
    newest = {e["seq_num"]: e for e in evs}  # the latest reading of each point
    points = readings.points()
    assert len(points) == 6
    assert sorted((r.seq_num, r.time) for r in points.values()) == sorted(
        (e["seq_num"], e["time"]) for e in newest.values()
    )
    # the readings taken again keep the older ones too (Zarr: in its overflow group), in order
    superseded = [e for e in evs if newest[e["seq_num"]] is not e]
    assert len(superseded) >= 1
    assert_holds(Readings(readings.older(), in_event_order=True), superseded, ["cam"])
    assert fmt.info(tmp_path, uid).status == "success"


def test_an_aborted_scan_keeps_what_was_taken_and_says_so(RE, record, tmp_path, fmt):
    RE.subscribe(fmt.writer(tmp_path))
    with pytest.raises(RunEngineInterrupted):
        RE(pause_after_saves(bp.grid_scan([FrameCounter()], motor1, 0, 2, 3, motor2, 0, 1, 2), {4}))
    assert RE.state == "paused"
    RE.abort("the sample moved")
    uid = record[0][1]["uid"]
    info = fmt.info(tmp_path, uid)
    assert info.status == "abort" and info.stop is not None and info.stop["exit_status"] == "abort"
    evs = events(record)
    readings = fmt.readings(tmp_path, uid)
    assert_holds(readings, evs, ["cam"])
    assert len(readings.points()) == len({e["seq_num"] for e in evs}) >= 4


@pytest.mark.parametrize("when", ["before finalize", "after finalize"])
def test_a_killed_writer_leaves_everything_it_flushed_readable(killed, fmt, when):
    """SIGKILL while the writer thread writes: Zarr's ``written`` mask vouches for what is there, the
    Parquet parts and every whole Arrow batch read; ``finalize`` makes a finished, ``incomplete`` run."""
    directory = killed(fmt.name)
    if when == "before finalize":
        readings = fmt.unfinished_readings(directory, "crash")
    else:
        info, readings = fmt.killed(directory, "crash")
        assert info.status == "incomplete" and info.stop is None
        assert info.start["plan_name"] == "grid_scan"
    seq = readings.seq_nums()
    assert len(set(seq)) == len(seq)
    assert set(range(1, FLUSHED + 1)) <= set(seq)  # every event flushed before the kill
    assert len(seq) < math.prod(GRID)  # the scan was cut short
    if readings.in_event_order:  # a table grows row after row: its rows are the first events
        assert seq == list(range(1, len(seq) + 1))
    # every reading held is its own frame: no fill value passes for one
    frames = np.stack([r.data["cam"] for r in readings.rows])
    np.testing.assert_array_equal(frames[:, 0, 0], np.asarray(seq) + 1)  # frame 1 is taken at creation
    setpoints = [np.linspace(0, 1, n).tolist() for n in GRID]
    assert_on_their_grid(readings, ["motor1", "motor2"], setpoints)

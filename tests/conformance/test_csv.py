"""CSV, through the behaviour tests about readings: CSV holds no arrays and no run metadata (the
status and the documents are in the writer's other formats), so the tests that ask for those run
for the other formats only. What a CSV file holds must be what they hold: every event once, on its
grid point, readable while the scan runs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from documents import as_pages, events, expected_indices, run_documents, runs, snaking
from formats import CSV_OUTPUT, Readings, assert_holds, assert_on_their_grid
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ophyd.sim import det, motor1, motor2
from scans import pause_after_saves, run_resuming
from stand_ins import FrameCounter
from test_relative_scans import MOTORS, RELATIVE_PLANS

from bluesky_zarr import CSV, export

fmt = CSV_OUTPUT


def assert_rows(readings: Readings, evs: list[dict[str, Any]], keys: list[str]) -> None:
    """Each event once, in the order it came, its values exact: CSV keeps no dtype, so a reader takes
    integers for integers, floats for floats and booleans for booleans (not their width)."""
    assert [(r.seq_num, r.time) for r in readings.rows] == [(e["seq_num"], e["time"]) for e in evs]
    kinds = {"u": "i", "b": "b", "i": "i", "f": "f"}
    for row, event in zip(readings.rows, evs, strict=True):
        for key in keys:
            expected, got = np.asarray(event["data"][key]), np.asarray(row.data[key])
            np.testing.assert_array_equal(got, expected, err_msg=f"{key} of seq_num {row.seq_num}")
            assert kinds[got.dtype.kind] == kinds[expected.dtype.kind], (key, row.seq_num, got.dtype)


def test_every_flushed_row_is_readable_while_the_scan_runs(RE, record, tmp_path):
    writer = fmt.writer(tmp_path, file_prefix="live")
    seen = []

    def look(name, doc):
        if name == "event":
            writer.flush()
            seen.append(fmt.readings(tmp_path, "live"))

    RE.subscribe(writer)
    RE.subscribe(look)
    RE(bp.grid_scan([FrameCounter(), det], motor1, 0, 1, 3, motor2, 0, 1, 3))
    evs = events(record)
    for n, readings in enumerate(seen, start=1):
        assert_holds(readings, evs[:n], ["det", "motor1", "motor2"])
    assert_on_their_grid(fmt.readings(tmp_path, "live"), MOTORS, [[0, 0.5, 1]] * 2)


@pytest.mark.parametrize("plan", RELATIVE_PLANS)
def test_a_relative_scan_is_stored_where_the_motors_were(RE, record, tmp_path, plan):
    factory, offsets = RELATIVE_PLANS[plan]
    RE(bps.mv(motor1, 5, motor2, 10))
    RE.subscribe(fmt.writer(tmp_path / "live"))
    RE(factory())
    uid = record[0][1]["uid"]
    export(as_pages(record, 4), tmp_path / "pages", format="csv")
    for directory in (tmp_path / "live", tmp_path / "pages"):
        readings = fmt.readings(directory, uid)
        assert_holds(readings, events(record), ["det", *MOTORS])
        assert_on_their_grid(readings, MOTORS, offsets, [5.0, 10.0])


def test_pause_and_resume_keep_every_row(RE, record, tmp_path):
    RE.subscribe(fmt.writer(tmp_path))
    plan = pause_after_saves(bp.grid_scan([det], motor1, 0, 2, 3, motor2, 0, 1, 2, snake_axes=True), {2, 4})
    run_resuming(RE, plan)
    evs = events(record)
    assert len({e["seq_num"] for e in evs}) < len(evs)  # points were taken again
    readings = fmt.readings(tmp_path, record[0][1]["uid"])
    assert_holds(readings, evs, ["det", "motor1", "motor2"])  # every reading, in the order it came
    assert_on_their_grid(readings, MOTORS, [[0, 1, 2], [0, 1]])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=runs(), seed=st.integers(0, 2**32 - 1))
def test_any_document_stream_round_trips_its_scalars(spec, seed):
    docs, evs = run_documents(spec, np.random.default_rng(seed))
    scalars = [key for key, (_, shape) in spec["keys"].items() if not shape]
    if not scalars:
        return
    with tempfile.TemporaryDirectory() as tmp:
        export(docs, tmp, format=CSV(data_keys="scalars"))
        readings = fmt.readings(Path(tmp), docs[0][1]["uid"])
        assert_rows(readings, evs, scalars)
        if spec["grid"]:
            order = expected_indices(spec["grid"], snaking(spec))
            on_grid = min(len(evs), len(order))
            assert [r.index for r in readings.rows[:on_grid]] == order[:on_grid]
            assert all(r.index is None for r in readings.rows[on_grid:])

"""A plan paused and resumed: the RunEngine rewinds to its last checkpoint and takes the readings
after it again, with the same seq_num; every format keeps every row and marks those superseded."""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pyarrow as pa
import pytest
import xarray as xr
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky.utils import Msg, RunEngineInterrupted
from ophyd.sim import det, motor
from tables import read_parquet

from bluesky_zarr import Writer, ZarrWriter


def paused_scan(steps: int, pause_after: int):
    """``bp.scan`` over ``steps`` points that pauses once, right after the reading of step
    ``pause_after``: resumed, the RunEngine goes back to that step's checkpoint and takes it again."""
    taken = {"steps": 0}

    def per_step(detectors, step, pos_cache):
        yield from bps.one_nd_step(detectors, step, pos_cache)
        taken["steps"] += 1
        if taken["steps"] == pause_after:
            yield Msg("pause")

    return bp.scan([det], motor, 0, steps - 1, steps, per_step=per_step)


def test_a_resumed_scan_keeps_every_row_and_marks_the_superseded_one(RE, record, tmp_path):
    RE.subscribe(Writer(tmp_path, "parquet", "arrow", file_prefix="paused"))
    with pytest.raises(RunEngineInterrupted):
        RE(paused_scan(5, 3))
    RE.resume()
    events = [doc for name, doc in record if name == "event"]
    assert [e["seq_num"] for e in events] == [1, 2, 3, 3, 4, 5]  # what bluesky emits: step 3 again

    views = read_parquet(tmp_path / "paused" / "primary.parquet")
    assert views.polars["seq_num"].to_list() == [1, 2, 3, 3, 4, 5]  # nothing dropped
    assert views.polars["superseded"].to_list() == [False, False, True, False, False, False]
    assert views.metadata()["superseded"] == [3] and views.metadata()["status"] == "success"
    kept = duckdb.sql(f"select seq_num from '{tmp_path}/paused/primary.parquet' where not superseded")
    assert [r[0] for r in kept.fetchall()] == [1, 2, 3, 4, 5]
    last_taken = pl.read_parquet(tmp_path / "paused" / "primary.parquet").filter(~pl.col("superseded"))
    assert last_taken["det"].to_list() == [e["data"]["det"] for e in events if e is not events[2]]

    with pa.ipc.open_stream(tmp_path / "paused" / "primary.arrows") as reader:  # append-only: metadata
        seq, custom = [], None
        while True:
            try:
                batch, custom = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            seq += batch["seq_num"].to_pylist()
    assert seq == [1, 2, 3, 3, 4, 5] and json.loads(custom[b"superseded"]) == [3]


def test_a_scan_never_paused_has_no_superseded_column(RE, tmp_path):
    RE.subscribe(Writer(tmp_path, "parquet", file_prefix="plain"))
    RE(bp.scan([det], motor, 0, 1, 3))
    views = read_parquet(tmp_path / "plain" / "primary.parquet")
    assert "superseded" not in views.polars.columns and "superseded" not in views.metadata()


def test_a_resumed_scan_in_a_zarr_stream_keeps_every_row_and_lists_the_superseded_seq_num(
    RE, record, tmp_path
):
    RE.subscribe(ZarrWriter(tmp_path, file_prefix="paused"))
    with pytest.raises(RunEngineInterrupted):
        RE(paused_scan(5, 3))
    RE.resume()
    events = [doc for name, doc in record if name == "event"]
    ds = xr.open_zarr(tmp_path / "paused.zarr", group="primary")  # a 1-D stream: bp.scan is no grid
    assert ds.seq_num.values.tolist() == [1, 2, 3, 3, 4, 5]  # nothing dropped
    assert ds.attrs["superseded"] == [3]
    last_taken = ds.swap_dims(time="seq_num").drop_duplicates("seq_num", keep="last")  # the recipe
    assert last_taken.det.values.tolist() == [e["data"]["det"] for e in events if e is not events[2]]

"""Real RunEngine scans through ZarrWriter, read back with xarray and tensorstore.

Each reading's expected place is computed independently of the writer's seq_num arithmetic: from
the motor positions recorded in the event itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import event_model
import numpy as np
import pytest
import xarray as xr
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from documents import as_pages, composed_run, events
from ophyd.sim import det, motor1, motor2, motor3
from scans import GRID_PLANS, PLAIN_PLANS
from stand_ins import FrameCounter
from stock import assert_tensorstore_agrees, assert_unwritten_points_hold_fill_values, open_stream, root_attrs

from bluesky_zarr import WriteError, ZarrWriter, export, open_run


@pytest.fixture
def cam() -> FrameCounter:
    return FrameCounter()


def check_grid(
    store: Path,
    documents: list[tuple[str, Any]],
    motors: list[str],
    setpoints: list[list[float]],
    origins: list[float],
) -> None:
    """Every event sits at the grid index its own motor readbacks point to, and nowhere else; the
    setpoint coordinates are absolute positions (a relative plan's ``setpoints`` are offsets from
    ``origins``, where the motors started; an absolute plan's ``origins`` are 0)."""
    ds = open_stream(store)
    evs = events(documents)
    assert ds["cam"].dims == (*motors, "y", "x")
    for motor, values, origin in zip(motors, setpoints, origins, strict=True):
        np.testing.assert_allclose(ds[motor].values, np.asarray(values) + origin)
        if ds[motor].attrs["relative"]:
            assert ds[motor].attrs["origin"] == origin
            np.testing.assert_allclose(ds[f"{motor}_offset"].values, values)
        else:
            assert "origin" not in ds[motor].attrs and f"{motor}_offset" not in ds.variables
    seen = np.zeros(ds["written"].shape, dtype=bool)
    for e in evs:
        index = tuple(
            int(np.argmin(np.abs(np.asarray(values) + origin - e["data"][m])))
            for values, origin, m in zip(setpoints, origins, motors, strict=True)
        )
        np.testing.assert_array_equal(ds["cam"].values[index], e["data"]["cam"])
        assert ds["det"].values[index] == e["data"]["det"]
        assert ds["seq_num"].values[index] == e["seq_num"]
        assert ds["time"].values[index] == e["time"]
        seen[index] = True
    np.testing.assert_array_equal(ds["written"].values, seen)
    assert_tensorstore_agrees(store)


@pytest.mark.parametrize("plan", GRID_PLANS)
def test_grid_scans_land_on_their_grid(RE, record, cam, tmp_path, plan):
    factory, setpoints = GRID_PLANS[plan]
    motor1.set(5).wait()  # so relative plans are told apart from absolute ones
    motors_at_start = {m.name: m.position for m in (motor1, motor2, motor3)}
    RE.subscribe(ZarrWriter(tmp_path / "live"))
    (uid,) = RE(factory([cam, det]))
    motors = list(record[0][1]["motors"])
    origins = [motors_at_start[m] if plan.startswith("rel") else 0.0 for m in motors]
    check_grid(tmp_path / "live" / f"{uid}.zarr", record, motors, setpoints, origins)
    # the same documents replayed as event pages of 5 land the same way
    artifacts = export(as_pages(record, 5), tmp_path / "pages")
    check_grid(artifacts["zarr"][0], record, motors, setpoints, origins)
    attrs = root_attrs(artifacts["zarr"][0])
    assert attrs["status"] == "success"
    assert attrs["start"]["uid"] == uid and attrs["stop"]["run_start"] == uid
    assert open_stream(artifacts["zarr"][0])[motors[0]].attrs["relative"] == plan.startswith("rel")


def test_setpoint_coordinates_allow_selection_by_value(RE, cam, tmp_path):
    RE.subscribe(ZarrWriter(tmp_path))
    (uid,) = RE(bp.grid_scan([cam], motor1, 700, 790, 10, motor2, 0, 4, 5, snake_axes=True))
    tree = open_run(tmp_path / f"{uid}.zarr")
    primary = tree["primary"]
    assert primary.cam.dims == ("motor1", "motor2", "y", "x")
    np.testing.assert_allclose(primary.motor1.values, np.linspace(700, 790, 10))
    frame = primary.cam.sel(motor1=750, motor2=0).values
    readback = primary.motor1_readback.sel(motor1=750, motor2=0).values
    assert readback == 750 and frame.shape == (6, 4)
    assert "motor1_readback" in primary.coords and "motor2_setpoint" in primary.coords
    assert tree.attrs["status"] == "success"


def test_a_relative_scan_is_selected_by_where_the_motors_were(RE, record, tmp_path):
    RE(bps.mv(motor1, 5, motor2, 10))
    RE.subscribe(ZarrWriter(tmp_path / "all"))
    RE.subscribe(ZarrWriter(tmp_path / "det", data_keys=["det"]))  # the motors' fields left out
    (uid,) = RE(bp.rel_grid_scan([det], motor1, -1, 1, 3, motor2, 0, 2, 2))
    (event,) = [e for e in events(record) if (e["data"]["motor1"], e["data"]["motor2"]) == (6.0, 12.0)]
    for directory in ("all", "det"):  # placed alike
        store = tmp_path / directory / f"{uid}.zarr"
        ds = xr.open_zarr(store, group="primary", zarr_format=3)
        assert ds.det.sel(motor1=6, motor2=12).values == event["data"]["det"]
        assert open_run(store)["primary"].det.sel(motor1=6, motor2=12).values == event["data"]["det"]
        np.testing.assert_array_equal(ds.motor1.values, [4, 5, 6])
        assert {"motor1_offset", "motor2_offset"} <= set(ds.coords)
        assert ds.motor1_offset.dims == ("motor1",)
        np.testing.assert_array_equal(ds.motor1_offset.values, [-1, 0, 1])
        assert ds.motor1.attrs["relative"] == 1 and ds.motor1.attrs["origin"] == 5.0
        assert ds.motor2.attrs["origin"] == 10.0 and "origin_unknown" not in ds.motor2.attrs
        assert json.loads(ds.attrs["grid"])["origin"] == {"motor1": 5.0, "motor2": 10.0}
        assert_tensorstore_agrees(store)


def move_and_read_detectors(detectors, step, pos_cache):
    yield from bps.move_per_step(step, pos_cache)
    yield from bps.trigger_and_read(list(detectors))


def test_a_relative_grid_whose_motor_no_event_reads_says_its_origin_is_unknown(RE, tmp_path):
    RE(bps.mv(motor1, 5))
    RE.subscribe(ZarrWriter(tmp_path))
    (uid,) = RE(bp.rel_list_grid_scan([det], motor1, [-1, 1], per_step=move_and_read_detectors))
    ds = open_stream(tmp_path / f"{uid}.zarr")
    np.testing.assert_array_equal(ds.motor1.values, [-1, 1])  # the offsets: nothing is guessed
    np.testing.assert_array_equal(ds.motor1_offset.values, [-1, 1])
    attrs = ds.motor1.attrs
    assert attrs["relative"] == 1 and attrs["origin_unknown"] == 1 and "origin" not in attrs
    assert "not absolute positions" in attrs["comment"]
    assert ds.attrs["grid"]["origin"] == {"motor1": None}


@pytest.mark.parametrize("plan", PLAIN_PLANS.values(), ids=PLAIN_PLANS)
def test_plans_without_grid_grow_along_time(RE, record, cam, tmp_path, plan):
    RE.subscribe(ZarrWriter(tmp_path))
    (uid,) = RE(plan([cam, det]))
    store = tmp_path / f"{uid}.zarr"
    ds = open_stream(store)
    evs = events(record)
    assert ds["cam"].dims == ("time", "y", "x")
    np.testing.assert_array_equal(ds["seq_num"].values, [e["seq_num"] for e in evs])
    np.testing.assert_array_equal(ds["time"].values, [e["time"] for e in evs])
    np.testing.assert_array_equal(ds["cam"].values, np.stack([e["data"]["cam"] for e in evs]))
    assert "written" not in ds
    assert_tensorstore_agrees(store)


def test_baseline_stream_sits_beside_the_grid(RE, record, cam, tmp_path):
    RE.subscribe(ZarrWriter(tmp_path))
    plan = bpp.baseline_wrapper(bp.grid_scan([cam], motor1, 0, 1, 2, motor2, 0, 1, 2), [motor3, det])
    (uid,) = RE(plan)
    tree = open_run(tmp_path / f"{uid}.zarr")
    assert set(tree.children) == {"primary", "baseline"}
    baseline = tree["baseline"]
    assert baseline.sizes["time"] == 2
    np.testing.assert_array_equal(
        baseline.motor3.values, [e["data"]["motor3"] for e in events(record, "baseline")]
    )
    assert tree["primary"].sizes == {"motor1": 2, "motor2": 2, "y": 6, "x": 4}


def test_descriptor_configuration_and_units_are_kept(RE, cam, tmp_path):
    RE.subscribe(ZarrWriter(tmp_path))
    (uid,) = RE(bp.count([cam, det], 2))
    primary = open_run(tmp_path / f"{uid}.zarr")["primary"]
    (descriptor,) = json.loads(primary.attrs["descriptors"])  # documents are JSON text
    assert descriptor["configuration"]["det"]["data"]["det_sigma"] == 1
    assert primary.cam.attrs["units"] == "counts"
    assert json.loads(primary.cam.attrs["data_key"])["dtype_numpy"] == "<u2"
    assert primary.cam.dtype == np.uint16


def test_many_runs_one_writer_one_store_each(RE, cam, tmp_path):
    writer = ZarrWriter(tmp_path, file_prefix="scan{start[scan_id]}")
    RE.subscribe(writer)
    for _ in range(3):
        RE(bp.count([cam], 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan1.zarr", "scan2.zarr", "scan3.zarr"]
    assert [p.name for p in writer.artifacts["zarr"]] == ["scan1.zarr", "scan2.zarr", "scan3.zarr"]
    writer.close()
    writer.close()  # idempotent


def test_subscribing_keeps_the_writer_alive(RE, cam, tmp_path):
    import gc

    RE.subscribe(ZarrWriter(tmp_path))  # no reference kept by the caller
    gc.collect()
    (uid,) = RE(bp.count([cam], 1))
    assert root_attrs(tmp_path / f"{uid}.zarr")["status"] == "success"


def test_several_descriptors_in_one_stream(tmp_path):
    """A configuration change gives a stream a second descriptor; both feed the same arrays."""
    run = event_model.compose_run(metadata={"shape": [2, 2]})
    data_keys = {
        "a": {"dtype": "number", "shape": [], "source": "x"},
        "b": {"dtype": "integer", "shape": [3], "source": "y"},
    }

    def configuration(gain: int) -> dict[str, Any]:
        return {"dev": {"data": {"gain": gain}, "timestamps": {"gain": 0},
                        "data_keys": {"gain": {"dtype": "integer", "shape": [], "source": "g"}}}}  # fmt: skip

    first = run.compose_descriptor(name="primary", data_keys=data_keys, configuration=configuration(1))
    second = run.compose_descriptor(name="primary", data_keys=data_keys, configuration=configuration(2))
    stamps = {"a": 0, "b": 0}
    docs = [("start", run.start_doc), ("descriptor", first.descriptor_doc)]
    docs.append(("event", first.compose_event(data={"a": 1.5, "b": [1, 2, 3]}, timestamps=stamps, seq_num=1)))
    docs.append(("descriptor", second.descriptor_doc))
    docs.append(
        ("event", second.compose_event(data={"a": 2.5, "b": [4, 5, 6]}, timestamps=stamps, seq_num=2))
    )
    docs.append(("stop", run.compose_stop()))
    (store,) = export(docs, tmp_path)["zarr"]
    ds = open_stream(store)
    np.testing.assert_array_equal(ds.a.values, [[1.5, 2.5], [np.nan, np.nan]])
    np.testing.assert_array_equal(ds.b.values[0], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(ds.written.values, [[True, True], [False, False]])
    gains = [d["configuration"]["dev"]["data"]["gain"] for d in ds.attrs["descriptors"]]
    assert gains == [1, 2]


def test_events_beyond_the_grid_go_to_overflow(tmp_path):
    run = event_model.compose_run(metadata={"shape": [2]})
    desc = run.compose_descriptor(
        name="primary", data_keys={"a": {"dtype": "number", "shape": [], "source": "x"}}
    )
    docs = [("start", run.start_doc), ("descriptor", desc.descriptor_doc)]
    for seq in (1, 2, 3, 4, 0):
        docs.append(("event", desc.compose_event(data={"a": float(seq)}, timestamps={"a": 0}, seq_num=seq)))
    docs.append(("stop", run.compose_stop()))
    (store,) = export(docs, tmp_path)["zarr"]
    tree = open_run(store)
    np.testing.assert_array_equal(tree["primary"].a.values, [1.0, 2.0])
    overflow = open_stream(store, "primary/overflow")
    np.testing.assert_array_equal(overflow.a.values, [3.0, 4.0, 0.0])
    np.testing.assert_array_equal(overflow.seq_num.values, [3, 4, 0])
    assert json.loads(tree["primary"].attrs["overflow"]) == {"events": 3, "superseded": 0}
    assert_tensorstore_agrees(store)


def test_text_readings_are_stored(tmp_path):
    run = event_model.compose_run()
    desc = run.compose_descriptor(
        name="primary", data_keys={"state": {"dtype": "string", "shape": [], "source": "x"}}
    )
    docs = [("start", run.start_doc), ("descriptor", desc.descriptor_doc)]
    for i, state in enumerate(["open", "closed", "ünïcode"], start=1):
        docs.append(("event", desc.compose_event(data={"state": state}, timestamps={"state": 0}, seq_num=i)))
    docs.append(("stop", run.compose_stop()))
    (store,) = export(docs, tmp_path)["zarr"]
    assert list(open_stream(store).state.values) == ["open", "closed", "ünïcode"]
    meta = json.loads((store / "primary" / "state" / "zarr.json").read_text())
    assert meta["data_type"] == "string"
    assert meta["dimension_names"] == meta["attributes"]["_ARRAY_DIMENSIONS"] == ["time"]


def test_a_small_buffer_blocks_the_caller_and_loses_nothing(RE, tmp_path):
    """With room for one frame only, every document still arrives, in order."""
    cam = FrameCounter(shape=(256, 256))
    RE.subscribe(ZarrWriter(tmp_path, buffer_bytes=1))
    (uid,) = RE(bp.count([cam], 20))
    ds = open_stream(tmp_path / f"{uid}.zarr")
    np.testing.assert_array_equal(ds.cam.values[:, 0, 0], np.arange(2, 22))


def test_a_chunk_that_cannot_be_written_surfaces_in_the_scan_with_its_path(RE, record, tmp_path):
    writer = ZarrWriter(tmp_path)
    blocked = {}

    def block_the_stream_directory(name, doc):
        if name == "descriptor":
            writer.flush()
            store = tmp_path / f"{doc['run_start']}.zarr"
            os.rename(store / "primary", store / "primary-moved")
            (store / "primary").write_text("not a directory")
            blocked["store"] = store

    RE.subscribe(writer)
    RE.subscribe(block_the_stream_directory)
    with pytest.raises(WriteError, match=r"cannot write .*\.zarr/primary/\w+/c\.0.*Not a directory"):
        RE(bp.count([FrameCounter()], 3))
    assert root_attrs(blocked["store"])["start"]["uid"] == record[0][1]["uid"]


@pytest.mark.parametrize("shards", [None, {"frame": {"dim_0": -1, "dim_1": -1}}], ids=["chunks", "shards"])
def test_a_widened_array_is_rewritten_whole_and_stock_readers_agree(tmp_path, shards):
    """Widening rewrites what is on disk (complete chunks, closed and open shards, the overflow) in the
    new dtype; points never measured hold the new fill value, and tensorstore reads what xarray reads."""
    keys = {
        "frame": {"dtype": "array", "dtype_numpy": "|u1", "shape": [3, 2], "source": "cam"},
        "count": {"dtype": "integer", "shape": [], "source": "c"},
    }
    rows = [{"frame": np.full((3, 2), i, "|u1"), "count": i} for i in range(1, 9)]
    rows[4]["count"] = 4.5  # int64 -> float64 after four points are on disk
    rows[6]["frame"] = np.full((3, 2), 700, "<u2")  # uint8 -> uint16, in the overflow (seq_num 7 > 2x3)
    docs = composed_run(keys, rows, shape=[2, 3])
    del docs[7]  # seq_num 6 never comes: its point stays unwritten
    writer = ZarrWriter(tmp_path, file_prefix="w", flush_interval=0.01, shards=shards)
    for name, doc in docs:
        writer(name, doc)
        writer.flush()  # so each widening finds data on disk
    writer.close()
    store = tmp_path / "w.zarr"
    ds = xr.open_zarr(store, group="primary")
    assert ds["count"].dtype == np.float64 and ds["frame"].dtype == np.uint16
    assert json.loads(ds["count"].attrs["dtype_widened"]) == {
        "declared": "int64",
        "stored": "float64",
        "first_seq_num": 5,
    }
    np.testing.assert_array_equal(ds["count"].values, [[1, 2, 3], [4, 4.5, np.nan]])
    np.testing.assert_array_equal(ds["written"].values, [[True] * 3, [True, True, False]])
    np.testing.assert_array_equal(ds["frame"].values[1, 1], np.full((3, 2), 5))
    overflow = xr.open_zarr(store, group="primary/overflow")
    np.testing.assert_array_equal(overflow["frame"].values[:, 0, 0], [700, 8])
    assert overflow["frame"].dtype == np.uint16
    assert_unwritten_points_hold_fill_values(ds, ["dim_0", "dim_1"])
    assert assert_tensorstore_agrees(store) >= 8
    assert not [p for p in store.rglob(".*") if p.is_dir()]  # no staging or retired array is left


def test_a_writer_far_behind_gathers_pages_of_bounded_bytes(tmp_path, monkeypatch):
    """Events that wait in the buffer become pages of at most PAGE_BYTES of readings (a page's
    readings are copied into one array), however many wait; every frame still lands."""
    import threading

    from bluesky_zarr.writing._paging import PAGE_BYTES

    frame_bytes = 1024**2
    frames = [np.full((512, 1024), i, dtype="<u2") for i in range(100)]
    keys = {"cam": {"source": "t", "dtype": "array", "dtype_numpy": "<u2", "shape": [512, 1024]}}
    docs = composed_run(keys, [{"cam": f} for f in frames])
    writer = ZarrWriter(tmp_path, buffer_bytes=400 * frame_bytes)
    router = writer._router
    held, pages = threading.Event(), []
    real_events = router.events

    def events_once_held(name, batch):
        held.wait(timeout=60)  # the first batch waits while the rest piles up in the buffer
        pages.append(len(batch))
        return real_events(name, batch)

    monkeypatch.setattr(router, "events", events_once_held)
    for name, doc in docs[:3]:  # start, descriptor, the first event
        writer(name, doc)
    for name, doc in docs[3:-1]:
        writer(name, doc)
    held.set()
    writer(*docs[-1])  # the stop waits until the run is written
    writer.close()
    assert sum(pages) == 100 and len(pages) > 2
    assert max(pages) <= PAGE_BYTES // frame_bytes
    stored = open_stream(tmp_path / f"{docs[0][1]['uid']}.zarr")["cam"].values
    np.testing.assert_array_equal(stored[:, 0, 0], np.arange(100))

"""Real RunEngine scans through the Parquet and Arrow IPC writers, read back with pyarrow, polars, pandas.

Each event's expected grid index is computed independently of the writer's seq_num arithmetic:
from the motor positions recorded in the event itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import event_model
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from documents import as_pages, composed_run, events
from ophyd.sim import det, motor1, motor2, motor3
from scans import GRID_PLANS, PLAIN_PLANS
from stand_ins import FrameCounter
from tables import Views, batches_with_metadata, read_any

from bluesky_zarr import ArrowIPC, Parquet, Writer, export

TABLE_FORMATS = ["parquet", "arrow"]
SUFFIX = {"parquet": ".parquet", "arrow": ".arrows"}


@pytest.fixture
def cam() -> FrameCounter:
    return FrameCounter()


def table(directory: Path, run: str, fmt: str, stream: str = "primary") -> Path:
    return directory / run / f"{stream}{SUFFIX[fmt]}"


def check_rows(views: Views, evs: list[dict[str, Any]], keys: list[str]) -> None:
    """Rows in event order; every reader gives the event's values, dtypes and reading shapes."""
    assert views.num_rows == len(evs)
    if not evs:
        return
    for name in ["time", "seq_num", *keys]:
        expected = np.asarray([e[name] if name in {"time", "seq_num"} else e["data"][name] for e in evs])
        for reader, values in views.columns(name).items():
            np.testing.assert_array_equal(values, expected, err_msg=f"{name} by {reader}")
            if expected.dtype.kind in "iuf":
                assert values.dtype.kind == expected.dtype.kind, (name, reader, values.dtype)


def check_grid_indices(
    views: Views,
    evs: list[dict[str, Any]],
    motors: list[str],
    setpoints: list[list[float]],
    origins: list[float],
) -> None:
    """The index and setpoint columns (absolute positions), and a relative plan's offsets (its
    ``setpoints``, from ``origins``, where the motors started; an absolute plan's are 0)."""
    grid = views.metadata()["grid"]
    assert grid["dims"] == motors
    for d, motor in enumerate(motors):
        column = grid["index_columns"][motor]
        expected = [
            int(np.argmin(np.abs(np.asarray(setpoints[d]) + origins[d] - e["data"][motor]))) for e in evs
        ]
        for reader, values in views.columns(column).items():
            np.testing.assert_array_equal(values, expected, err_msg=f"{column} by {reader}")
        np.testing.assert_allclose(
            views.columns(grid["setpoint_columns"][motor])["polars"],
            np.asarray(setpoints[d])[expected] + origins[d],
        )
        if grid["relative"]:
            np.testing.assert_allclose(
                views.columns(grid["offset_columns"][motor])["polars"], np.asarray(setpoints[d])[expected]
            )
        else:
            assert grid["offset_columns"] == {} and grid["origin"] == {}


@pytest.mark.parametrize("plan", GRID_PLANS)
def test_grid_scans_carry_their_grid_indices_in_both_formats(RE, record, cam, tmp_path, plan):
    factory, setpoints = GRID_PLANS[plan]
    motor1.set(5).wait()
    motors_at_start = {m.name: m.position for m in (motor1, motor2, motor3)}
    RE.subscribe(Writer(tmp_path / "live", Parquet(), ArrowIPC()))
    (uid,) = RE(factory([cam, det]))
    motors = list(record[0][1]["motors"])
    origins = [motors_at_start[m] if plan.startswith("rel") else 0.0 for m in motors]
    evs = events(record)
    replayed = export(as_pages(record, 5), tmp_path / "pages", format=["parquet", "arrow"])
    for fmt in TABLE_FORMATS:
        for path in (table(tmp_path / "live", uid, fmt), *replayed[fmt]):
            views = read_any(path)
            check_rows(views, evs, ["cam", "det", *motors])
            check_grid_indices(views, evs, motors, setpoints, origins)
            cam_type = views.arrow.schema.field("cam").type
            assert isinstance(cam_type, pa.FixedShapeTensorType)
            assert cam_type.shape == [6, 4] and cam_type.dim_names == ["y", "x"]
            assert cam_type.value_type == pa.uint16()


def test_a_relative_scan_has_absolute_grid_columns_and_its_offsets(RE, record, tmp_path):
    RE(bps.mv(motor1, 5, motor2, 10))
    RE.subscribe(Writer(tmp_path / "all", Parquet(), ArrowIPC()))
    RE.subscribe(Writer(tmp_path / "det", Parquet(data_keys=["det"]), ArrowIPC(data_keys=["det"])))
    (uid,) = RE(bp.rel_list_grid_scan([det], motor1, [1, -1, 0], motor2, [2, 0], snake_axes=True))
    evs = events(record)
    for directory in ("all", "det"):  # the motors' fields left out: the grid is placed all the same
        for fmt in TABLE_FORMATS:
            path = table(tmp_path / directory, uid, fmt)
            # one file each: the Arrow schema did not change when the grid was placed (no continuation)
            assert sorted(p.name for p in path.parent.iterdir()) == ["primary.arrows", "primary.parquet"]
            frame = read_any(path).polars
            np.testing.assert_array_equal(frame["motor1_grid"], [e["data"]["motor1_setpoint"] for e in evs])
            np.testing.assert_array_equal(frame["motor2_grid"], [e["data"]["motor2_setpoint"] for e in evs])
            np.testing.assert_array_equal(frame["motor1_offset"], frame["motor1_grid"] - 5)
            np.testing.assert_array_equal(frame["motor2_offset"], frame["motor2_grid"] - 10)
            (row,) = frame.filter((pl.col("motor1_grid") == 6) & (pl.col("motor2_grid") == 12)).rows(
                named=True
            )
            assert row["det"] == next(e["data"]["det"] for e in evs if e["seq_num"] == row["seq_num"])
            if fmt == "parquet":
                grid = read_any(path).metadata()["grid"]
            else:  # the schema was written before the first event: the batches carry the grid placed
                first, *_, last = batches_with_metadata(path)
                assert read_any(path).metadata()["grid"]["origin"] == {"motor1": None, "motor2": None}
                assert first[1]["grid"] == last[1]["grid"]
                grid = last[1]["grid"]
            assert grid["relative"] is True and grid["origin"] == {"motor1": 5.0, "motor2": 10.0}
            assert grid["setpoints"] == {"motor1": [6.0, 4.0, 5.0], "motor2": [12.0, 10.0]}
            assert grid["offsets"] == {"motor1": [1.0, -1.0, 0.0], "motor2": [2.0, 0.0]}
            assert grid["offset_columns"] == {"motor1": "motor1_offset", "motor2": "motor2_offset"}


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
@pytest.mark.parametrize("plan", PLAIN_PLANS.values(), ids=PLAIN_PLANS)
def test_plans_without_grid_are_plain_rows(RE, record, cam, tmp_path, plan, fmt):
    RE.subscribe(Writer(tmp_path, fmt))
    (uid,) = RE(plan([cam, det]))
    views = read_any(table(tmp_path, uid, fmt))
    check_rows(views, events(record), ["cam", "det"])
    assert "grid" not in views.metadata()
    assert not [c for c in views.arrow.column_names if c.endswith(("_index", "_grid"))]


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
def test_baseline_is_a_table_of_its_own(RE, record, cam, tmp_path, fmt):
    writer = Writer(tmp_path, fmt)
    RE.subscribe(writer)
    plan = bpp.baseline_wrapper(bp.grid_scan([cam], motor1, 0, 1, 2, motor2, 0, 1, 2), [motor3, det])
    (uid,) = RE(plan)
    assert sorted(p.name for p in (tmp_path / uid).iterdir()) == sorted(
        f"{s}{SUFFIX[fmt]}" for s in ("baseline", "primary")
    )
    assert sorted(writer.artifacts[fmt]) == sorted((tmp_path / uid).iterdir())
    baseline = read_any(table(tmp_path, uid, fmt, "baseline"))
    check_rows(baseline, events(record, "baseline"), ["motor3", "det"])
    assert "grid" not in baseline.metadata()
    check_rows(read_any(table(tmp_path, uid, fmt)), events(record), ["cam"])


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
def test_metadata_holds_start_descriptors_and_stop(RE, cam, tmp_path, fmt):
    RE.subscribe(Writer(tmp_path, fmt))
    (uid,) = RE(bp.count([cam, det], 3), sample="quartz", bad=float("nan"))
    path = table(tmp_path, uid, fmt)
    metadata = read_any(path).metadata()
    assert metadata["start"]["uid"] == uid and metadata["start"]["bad"] == "NaN"
    assert metadata["stream"] == "primary"
    (descriptor,) = metadata["descriptors"]
    assert descriptor["data_keys"]["cam"]["dtype_numpy"] == "<u2"
    assert metadata["columns"] == {"cam": "cam", "det": "det"}
    if fmt == "parquet":
        assert metadata["status"] == "success" and metadata["stop"]["run_start"] == uid
    else:  # the schema is written first; the stop document comes in the last batch
        assert metadata["status"] == "running" and "stop" not in metadata
        *_, (last, custom) = batches_with_metadata(path)
        assert last.num_rows == 0
        assert custom["status"] == "success" and custom["stop"]["run_start"] == uid
        assert custom["descriptors"] == [descriptor]


DTYPE_KEYS = {
    "state": {"dtype": "string", "shape": [], "source": "x"},
    "counts": {"dtype": "integer", "dtype_numpy": "<u2", "shape": [], "source": "x"},
    "gain": {"dtype": "number", "dtype_numpy": "<f4", "shape": [], "source": "x"},
    "open": {"dtype": "boolean", "shape": [], "source": "x"},
    "n": {"dtype": "integer", "shape": [], "source": "x"},
    "spectrum": {"dtype": "array", "dtype_numpy": "<f4", "shape": [5], "dims": ["wavelength"], "source": "x"},
    "mask": {"dtype": "array", "dtype_numpy": "|b1", "shape": [2, 2], "source": "x"},
}


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
def test_every_dtype_reads_back_as_declared(tmp_path, fmt):
    states = ["open", "closed", "ünïcode"]
    rows = [
        {"state": s, "counts": 65535 - i, "gain": 0.5 + i, "open": bool(i % 2), "n": -(2**40) + i,
         "spectrum": np.linspace(0, 1, 5, dtype="<f4") * i, "mask": np.eye(2, dtype=bool) ^ bool(i % 2)}
        for i, s in enumerate(states)
    ]  # fmt: skip
    (path,) = export(composed_run(DTYPE_KEYS, rows), tmp_path, format=fmt)[fmt]
    views = read_any(path)
    schema = views.arrow.schema
    assert schema.field("state").type == pa.string()
    assert schema.field("counts").type == pa.uint16()
    assert schema.field("gain").type == pa.float32()
    assert schema.field("open").type == pa.bool_()
    assert schema.field("n").type == pa.int64()
    spectrum = schema.field("spectrum").type
    assert isinstance(spectrum, pa.FixedShapeTensorType) and spectrum.dim_names == ["wavelength"]
    assert views.polars["state"].to_list() == states == views.pandas["state"].to_list()
    for key, dtype in [
        ("counts", np.uint16),
        ("gain", np.float32),
        ("n", np.int64),
        ("spectrum", np.float32),
    ]:
        expected = np.asarray([r[key] for r in rows], dtype=dtype)
        for reader, values in views.columns(key).items():
            np.testing.assert_array_equal(values, expected, err_msg=f"{key} by {reader}")
            assert values.dtype == dtype, (key, reader, values.dtype)
    assert views.polars["open"].to_list() == [False, True, False]
    # booleans and text have no Arrow tensor type: flat fixed-size lists, the shape in the field
    mask_field = schema.field("mask")
    assert mask_field.metadata[b"shape"] == b"[2, 2]"
    masks = np.asarray(views.arrow.column("mask").to_pylist()).reshape(3, 2, 2)
    np.testing.assert_array_equal(masks, np.stack([r["mask"] for r in rows]))


def test_a_descriptor_with_new_keys_widens_the_table(tmp_path):
    """Parquet unifies the schemas (missing values are null); Arrow IPC continues in a second file.

    event-model's own rule is one set of data keys per stream; such documents are made by hand.
    """
    run = event_model.compose_run()
    first = run.compose_descriptor(
        name="primary", data_keys={"a": {"dtype": "number", "shape": [], "source": "x"}}
    )
    both = {
        "a": {"dtype": "number", "shape": [], "source": "x"},
        "b": {"dtype": "integer", "shape": [], "source": "y"},
    }
    second = run.compose_descriptor(name="primary", data_keys=both, validate=False)
    docs = [("start", run.start_doc), ("descriptor", first.descriptor_doc)]
    docs.append(("event", first.compose_event(data={"a": 1.5}, timestamps={"a": 0}, seq_num=1)))
    docs.append(("descriptor", second.descriptor_doc))
    docs.append(
        ("event", second.compose_event(data={"a": 2.5, "b": 7}, timestamps={"a": 0, "b": 0}, seq_num=2))
    )
    docs.append(("stop", run.compose_stop()))
    artifacts = export(docs, tmp_path, format=["parquet", "arrow"])
    (parquet,) = artifacts["parquet"]
    views = read_any(parquet)
    assert views.polars["a"].to_list() == [1.5, 2.5]
    assert views.polars["b"].to_list() == [None, 7]
    assert len(views.metadata()["descriptors"]) == 2
    first_file, continued = artifacts["arrow"]
    assert continued.name == "primary.1.arrows"
    assert batches_with_metadata(first_file)[-1][1]["continued_in"] == "primary.1.arrows"
    assert read_any(first_file).polars["a"].to_list() == [1.5]
    assert read_any(continued).polars.select("a", "b").rows() == [(2.5, 7)]


def test_the_format_objects_reject_what_they_cannot_do(tmp_path):
    from bluesky_zarr import ConfigurationError

    with pytest.raises(ConfigurationError, match="compression='lzma'"):
        Parquet(compression="lzma")
    with pytest.raises(ConfigurationError, match="batch_rows must be a positive integer"):
        ArrowIPC(batch_rows=0)
    assert Parquet(compression=None).compression == "none"
    assert not list(tmp_path.iterdir())

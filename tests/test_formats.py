"""Several formats from one subscription, each with its own data keys; one failing format stops no other."""

from __future__ import annotations

import os

import numpy as np
import pytest
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from documents import events
from ophyd.sim import det, motor1, motor2, motor3
from stand_ins import FrameCounter
from stock import open_stream, root_attrs
from tables import read_any, read_parquet

from bluesky_zarr import (
    CSV,
    HDF5,
    ArrowIPC,
    ConfigurationError,
    DocumentError,
    HDF5Writer,
    Parquet,
    WriteError,
    Writer,
    Zarr,
    ZarrWriter,
    export,
    open_run,
)


def test_frames_to_zarr_and_scalars_to_parquet_in_one_pass(RE, record, tmp_path):
    writer = Writer(tmp_path, Zarr(data_keys="arrays"), Parquet(data_keys="scalars"), file_prefix="scan")
    RE.subscribe(writer)
    plan = bpp.baseline_wrapper(
        bp.grid_scan([FrameCounter(), det], motor1, 0, 1, 2, motor2, 0, 2, 3), [motor3]
    )
    RE(plan)
    assert writer.artifacts == {  # the baseline is read first
        "zarr": [tmp_path / "scan.zarr"],
        "parquet": [tmp_path / "scan" / "baseline.parquet", tmp_path / "scan" / "primary.parquet"],
    }
    tree = open_run(tmp_path / "scan.zarr")
    assert set(tree.children) == {"primary"}  # the baseline holds no array: it is not in the store
    primary = tree["primary"]
    assert "cam" in primary and "det" not in primary and "motor1_readback" not in primary
    np.testing.assert_array_equal(
        primary.cam.values.reshape(6, 6, 4), np.stack([e["data"]["cam"] for e in events(record)])
    )
    scalars = read_parquet(tmp_path / "scan" / "primary.parquet")
    assert "cam" not in scalars.polars.columns
    assert scalars.polars["det"].to_list() == [e["data"]["det"] for e in events(record)]
    assert scalars.pandas["motor2_index"].tolist() == [0, 1, 2, 0, 1, 2]
    (descriptor,) = scalars.metadata()["descriptors"]
    assert "cam" not in descriptor["data_keys"] and "det" in descriptor["data_keys"]
    baseline = read_parquet(tmp_path / "scan" / "baseline.parquet")
    assert baseline.polars["motor3"].to_list() == [e["data"]["motor3"] for e in events(record, "baseline")]


def test_every_format_at_once_agrees(RE, record, tmp_path):
    """The same run written as Zarr, Parquet and Arrow IPC: xarray, polars and pyarrow read the same."""
    RE.subscribe(Writer(tmp_path, "zarr", "parquet", "arrow", file_prefix="all"))
    RE(bp.scan([FrameCounter(), det], motor1, 0, 1, 5))
    ds = open_stream(tmp_path / "all.zarr")
    for path in (tmp_path / "all" / "primary.parquet", tmp_path / "all" / "primary.arrows"):
        views = read_any(path)
        np.testing.assert_array_equal(views.columns("cam")["polars"], ds.cam.values)
        np.testing.assert_array_equal(views.columns("det")["pandas"], ds.det.values)
        np.testing.assert_array_equal(views.columns("time")["pyarrow"], ds.time.values)
    assert root_attrs(tmp_path / "all.zarr")["status"] == "success"


def test_export_takes_names_objects_and_lists(record, RE, tmp_path):
    RE(bp.count([det], 3))
    assert list(export(record, tmp_path / "a", format="parquet")) == ["parquet"]
    artifacts = export(record, tmp_path / "b", format=[Zarr(), ArrowIPC(batch_rows=1)])
    assert list(artifacts) == ["zarr", "arrow"]
    (arrows,) = artifacts["arrow"]
    assert read_any(arrows).arrow.column("det").num_chunks == 3 + 1  # a batch per row, then the stop batch


def test_a_key_list_with_a_typo_is_reported_and_the_rest_is_written(RE, tmp_path):
    RE.subscribe(Writer(tmp_path, Parquet(data_keys=["det", "detx"]), file_prefix="typo"))
    with pytest.raises(DocumentError, match=r"data_keys \['detx'\] of the parquet output match no data key"):
        RE(bp.count([det, FrameCounter()], 2))
    views = read_parquet(tmp_path / "typo" / "primary.parquet")
    assert views.arrow.column_names == ["time", "seq_num", "det"]
    assert views.num_rows == 2


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (
            lambda: Writer("x", "netcdf"),
            ["unknown format 'netcdf'", "'arrow', 'csv', 'hdf5', 'parquet', 'zarr'"],
        ),
        (lambda: Writer("x"), ["at least one format"]),
        (lambda: Writer("x", Parquet(), "parquet"), ["'parquet' is given twice"]),
        (lambda: Zarr(data_keys="frames"), ["data_keys='frames' is not one of", "data_keys=['frames']"]),
        (lambda: Parquet(data_keys=[]), ["non-empty list"]),
        (lambda: Parquet(data_keys=[1]), ["non-empty list of data key names"]),
        (lambda: ArrowIPC(compression="gzip"), ["compression='gzip'"]),
        (lambda: ZarrWriter("x", chunks={"cam": "big"}), ["'cam'"]),
        (lambda: export([], "x", format="tiff"), ["unknown format 'tiff'"]),
        (lambda: HDF5(compression={"cam": "lzma"}), ["data key 'cam'", "'lzma'", "gzip, lz4, zstd"]),
        (lambda: HDF5(suffix=".zip"), ["suffix", ".nxs"]),
        (lambda: HDF5Writer("x", chunks={"cam": "big"}), ["'cam'"]),
        (lambda: CSV(batch_rows=0), ["batch_rows"]),
    ],
)
def test_bad_formats_fail_before_anything_is_written(tmp_path, make, words):
    os.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        make()
    for word in words:
        assert word in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_a_failing_format_raises_and_the_others_write_everything(RE, record, tmp_path):
    """The Parquet parts folder is replaced by a file mid-scan: Parquet fails loudly, Zarr keeps going."""
    writer = Writer(tmp_path, Zarr(), Parquet(batch_rows=1), file_prefix="run")
    seen = []

    def block_the_parts_folder(name, doc):
        if name == "event":
            seen.append(doc["seq_num"])
            if len(seen) == 3:
                writer.flush()
                parts = tmp_path / "run" / "primary.parquet.parts"
                os.rename(parts, tmp_path / "moved-parts")
                parts.write_text("not a directory")
            if len(seen) == 4:  # part 4 is written now: its error comes before the stop, whatever the load
                writer.flush()

    RE.subscribe(writer)
    RE.subscribe(block_the_parts_folder)
    with pytest.raises(WriteError, match=r"cannot write .*run/primary\.parquet\.parts/part-000004\.parquet"):
        RE(bp.count([det, FrameCounter()], 6))
    writer.close()
    evs = events(record)
    ds = open_stream(tmp_path / "run.zarr")
    np.testing.assert_array_equal(ds.seq_num.values, [e["seq_num"] for e in evs])
    np.testing.assert_array_equal(ds.cam.values, np.stack([e["data"]["cam"] for e in evs]))
    # every part written before the failure is whole and holds its row
    moved = sorted((tmp_path / "moved-parts").glob("part-*.parquet"))
    rows = [read_parquet(p).polars["seq_num"].to_list() for p in moved]
    assert rows == [[], [1], [2], [3]]

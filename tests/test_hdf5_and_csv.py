"""The HDF5 and CSV formats, read back by the readers their users have: h5py, nexusformat, xarray
(h5netcdf) and pandas; a real reader process that follows an HDF5 file as a SWMR reader."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import h5py
import hdf5plugin
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from bluesky import plans as bp
from nexusformat.nexus import nxload
from ophyd.sim import det, motor1, motor2
from s3 import every_object, feed, grid_run
from stand_ins import FrameCounter
from stock import hdf5_attrs, open_hdf5_stream

from bluesky_zarr import (
    CSV,
    HDF5,
    ConfigurationError,
    CSVWriter,
    DocumentError,
    HDF5Writer,
    Writer,
    Zarr,
    export,
    open_run,
)
from bluesky_zarr.devices import make_sim_instrument
from bluesky_zarr.plans import wavelength_position_scan

WAVELENGTHS, POSITIONS = [700.0, 730.0, 760.0], [0.0, 2.0]


@pytest.fixture
def nested(RE, tmp_path):
    """A wavelength x position scan of the simulated instrument, written as Zarr, HDF5 and CSV."""
    instrument = make_sim_instrument(shape=(128, 256), fast=True, exposure_time=0.001)
    writer = Writer(tmp_path, Zarr(), HDF5(), CSV(data_keys="scalars"), file_prefix="scan")
    RE.subscribe(writer)
    RE(
        wavelength_position_scan(
            instrument.detectors, instrument.laser, WAVELENGTHS, instrument.stage, POSITIONS
        )
    )
    return tmp_path, writer.artifacts


def test_a_nested_scan_opens_in_h5py_with_nexus_attributes_and_a_scale_on_every_dimension(nested):
    directory, artifacts = nested
    assert artifacts["hdf5"] == [directory / "scan.h5"]
    with h5py.File(directory / "scan.h5", "r") as f:
        root = hdf5_attrs(f)
        assert (root["NX_class"], root["default"], root["status"]) == ("NXroot", "entry", "success")
        assert root["start"]["plan_name"] == "wavelength_position_scan" and root["stop"]["exit_status"]
        assert f["entry"].attrs["NX_class"] == "NXentry" and f["entry"].attrs["default"] == "primary"
        primary = f["entry/primary"]
        attrs = hdf5_attrs(primary)
        assert attrs["NX_class"] == "NXdata" and attrs["signal"] == "camera_image"
        assert attrs["axes"] == ["wavelength", "position", ".", "."]
        assert (attrs["wavelength_indices"], attrs["position_indices"]) == (0, 1)
        assert attrs["grid"]["dims"] == ["wavelength", "position"]
        image = primary["camera_image"]
        assert image.shape == (3, 2, 128, 256) and image.chunks == (1, 1, 128, 256)  # a frame per chunk
        assert image.compression == "gzip" and image.attrs["units"] == "counts"
        np.testing.assert_array_equal(primary["wavelength"][...], WAVELENGTHS)
        assert primary["wavelength"].attrs["units"] == "nm"
        assert primary["written"][...].all()
        for group in (primary, f["entry/baseline"]):
            for name, dataset in group.items():
                if dataset.is_scale:  # a scale is its own dimension's
                    continue
                for axis, dim in enumerate(dataset.dims):
                    assert len(dim) == 1, f"{group.name}/{name} has no scale on dimension {axis}"


def test_a_nested_scan_shows_its_axes_in_nexusformat(nested):
    directory, _ = nested
    root = nxload(str(directory / "scan.h5"))
    data = root.entry.primary
    assert data.nxsignal.nxname == "camera_image"
    assert [axis.nxname for axis in data.nxaxes[:2]] == ["wavelength", "position"]
    np.testing.assert_array_equal(data.nxaxes[0].nxvalue, WAVELENGTHS)
    assert root.entry.plottable_data.nxname == "primary"  # what a NeXus viewer plots by default


def test_the_hdf5_file_holds_what_the_zarr_store_holds_in_xarray(nested):
    directory, _ = nested
    tree = open_run(directory / "scan.zarr")
    for stream in ("primary", "baseline"):
        zarr = tree[stream].to_dataset()
        hdf5 = xr.open_dataset(directory / "scan.h5", engine="h5netcdf", group=f"entry/{stream}")
        assert dict(hdf5.sizes) == dict(zarr.sizes)
        assert set(hdf5.coords) == set(zarr.coords)
        for name, variable in zarr.variables.items():
            np.testing.assert_array_equal(hdf5[name].values, variable.values, err_msg=f"{stream}/{name}")
            assert hdf5[name].dims == variable.dims
    frame = xr.open_dataset(directory / "scan.h5", engine="h5netcdf", group="entry/primary").camera_image
    assert frame.sel(wavelength=730, position=2).dims == ("y", "x")


def test_the_scalar_streams_read_in_pandas_with_units_in_the_header(nested):
    directory, artifacts = nested
    assert artifacts["csv"] == [directory / "scan" / "baseline.csv", directory / "scan" / "primary.csv"]
    primary = pd.read_csv(directory / "scan" / "primary.csv")
    assert list(primary.columns[:6]) == [
        "time [s]", "seq_num", "wavelength_index", "position_index", "wavelength_grid [nm]",
        "position_grid [mm]",
    ]  # fmt: skip
    assert "camera_mean [counts]" in primary.columns and not any("camera_image" in c for c in primary)
    ds = open_run(directory / "scan.zarr")["primary"].to_dataset()
    for _, row in primary.iterrows():
        point = {"wavelength": int(row["wavelength_index"]), "position": int(row["position_index"])}
        at = ds.isel(point)
        assert row["seq_num"] == at.seq_num.values
        assert row["camera_mean [counts]"] == at.camera_mean.values
        assert row["wavelength_grid [nm]"] == at.wavelength.values
    assert primary["laser_wavelength [nm]"].dtype == np.float64  # whole numbers, written as floats
    baseline = pd.read_csv(directory / "scan" / "baseline.csv")
    assert len(baseline) == 2 and "laser_power [mW]" in baseline.columns


def test_an_array_key_in_csv_is_refused_by_name(RE, tmp_path):
    RE.subscribe(CSVWriter(tmp_path, file_prefix="run"))
    with pytest.raises(ConfigurationError) as caught:
        RE(bp.count([FrameCounter(), det], 2))
    message = str(caught.value)
    assert "data key 'cam' holds arrays of shape [6, 4]" in message
    assert "Zarr, HDF5 or Parquet" in message and "CSV(data_keys='scalars')" in message


def test_compression_is_chosen_per_data_key(RE, tmp_path):
    fmt = HDF5(compression={"cam": "lz4", "big": ("zstd", 5), "det": ("gzip", 4)}, suffix=".nxs")
    RE.subscribe(Writer(tmp_path, fmt, file_prefix="run"))
    RE(bp.count([FrameCounter(), FrameCounter("big", shape=(256, 256)), det], 3))
    with h5py.File(tmp_path / "run.nxs", "r") as f:
        primary = f["entry/primary"]
        assert str(hdf5plugin.LZ4.filter_id) in primary["cam"]._filters
        assert str(hdf5plugin.Zstd.filter_id) in primary["big"]._filters
        assert primary["det"].compression == "gzip" and primary["det"].compression_opts == 4
        assert primary["time"].compression is None  # what the user has no say in stays plain
        np.testing.assert_array_equal(primary["big"][:, 0, 0], [2, 3, 4])  # reading 1 at creation


def test_object_storage_is_refused_for_hdf5_with_the_target(RE, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    RE.subscribe(HDF5Writer("s3://bucket/runs/", file_prefix="run"))
    with pytest.raises(ConfigurationError, match=r"HDF5 cannot write to s3://bucket/runs/run\.h5: h5py"):
        RE(bp.count([det], 1))


def test_csv_goes_to_a_bucket_as_it_goes_to_a_directory(RE, tmp_path, s3_endpoint, bucket):
    """A real S3 server on 127.0.0.1: the bucket's CSV files are the local ones, byte for byte."""
    documents = grid_run(RE)
    uid = documents[0][1]["uid"]
    feed(CSVWriter(tmp_path, data_keys="scalars"), documents)
    remote = CSVWriter(
        f"s3://{bucket}/csv", data_keys="scalars", storage_options={"endpoint_url": s3_endpoint}
    )
    feed(remote, documents)
    assert remote.artifacts["csv"] == [f"s3://{bucket}/csv/{uid}/primary.csv"]
    objects = every_object(s3_endpoint, bucket)
    assert list(objects) == [f"csv/{uid}/primary.csv"]
    assert objects[f"csv/{uid}/primary.csv"] == (tmp_path / uid / "primary.csv").read_bytes()
    assert len(pd.read_csv(io.BytesIO(objects[f"csv/{uid}/primary.csv"]))) == 12


def test_export_and_the_cli_write_hdf5_and_csv(RE, record, tmp_path):
    RE(bp.grid_scan([det], motor1, 0, 1, 2, motor2, 0, 1, 3))
    uid = record[0][1]["uid"]
    artifacts = export(record, tmp_path / "exported", format=["hdf5", "csv"])
    assert artifacts == {
        "hdf5": [tmp_path / "exported" / f"{uid}.h5"],
        "csv": [tmp_path / "exported" / uid / "primary.csv"],
    }
    by_export = open_hdf5_stream(tmp_path / "exported" / f"{uid}.h5")
    assert by_export["det"].shape == (2, 3) and by_export["written"].values.all()
    source = tmp_path / "run.jsonl"
    source.write_text("".join(json.dumps([name, doc]) + "\n" for name, doc in record))
    command = [
        sys.executable,
        "-m",
        "bluesky_zarr.cli",
        "export",
        source,
        tmp_path / "cli",
        "--format",
        "hdf5,csv",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    by_cli = open_hdf5_stream(tmp_path / "cli" / f"{uid}.h5")
    xr.testing.assert_identical(by_cli, by_export)
    assert pd.read_csv(tmp_path / "cli" / uid / "primary.csv").equals(
        pd.read_csv(tmp_path / "exported" / uid / "primary.csv")
    )


def test_a_bad_reading_names_its_key_in_hdf5(RE, tmp_path):
    RE.subscribe(HDF5Writer(tmp_path, file_prefix="run", on_error="raise"))

    class Wrong(FrameCounter):
        def _frame(self) -> np.ndarray:
            return super()._frame()[:-1]

    with pytest.raises(
        DocumentError, match=r"data key 'cam' of the event with seq_num \d holds a reading of shape \[5, 4\]"
    ):
        RE(bp.count([Wrong()], 2))
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert f.attrs["status"] == "fail"  # never running, never success


# --- a reader in another process, following the file as a SWMR reader --------------------------------

READER = textwrap.dedent(
    """
    import json, sys, h5py, numpy as np
    path = sys.argv[1]
    f = None
    for command in sys.stdin:
        if command.strip() == "quit":
            break
        if f is None:
            f = h5py.File(path, "r", swmr=True)
            group = f["entry/primary"]
        for dataset in group.values():
            dataset.refresh()
        seq_num, cam = group["seq_num"][...], group["cam"][...]
        if "written" in group:  # on a grid: the points the mask vouches for
            held = [tuple(p) for p in np.argwhere(group["written"][...])]
        else:  # growing: seq_num's length is the events whole; the other datasets may be longer
            held = [(i,) for i in range(len(seq_num))] if len(cam) >= len(seq_num) else [None]
        bad = [p for p in held if p is None or seq_num[p] == 0 or not (cam[p] == seq_num[p] + 1).all()]
        print(json.dumps([len(held), [str(p) for p in bad]]), flush=True)
    """
)


@pytest.mark.parametrize("plan", ["grid_scan", "count"])
def test_a_reader_process_sees_every_flushed_event_and_never_one_not_written(RE, tmp_path, plan):
    """A real SWMR reader in its own process, asked after some events and a flush, while the writer
    goes on: every event the file vouches for (``written`` on a grid, ``seq_num``'s length in a
    growing stream) holds its own frame, and none that was flushed is missing."""
    writer = HDF5Writer(tmp_path, file_prefix="live", flush_interval=0.01)
    answers: list[tuple[int, int, list[str]]] = []
    command = [sys.executable, "-c", READER, str(tmp_path / "live.h5")]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as reader:
        assert reader.stdin is not None and reader.stdout is not None
        stdin, stdout = reader.stdin, reader.stdout

        def ask(name, doc):
            if name == "event" and doc["seq_num"] % 4 == 0:
                writer.flush()
                stdin.write("poll\n")
                stdin.flush()
                held, bad = json.loads(stdout.readline())
                answers.append((doc["seq_num"], held, bad))

        RE.subscribe(writer)
        RE.subscribe(ask)
        try:
            if plan == "grid_scan":
                RE(bp.grid_scan([FrameCounter()], motor1, 0, 1, 4, motor2, 0, 1, 5))
            else:
                RE(bp.count([FrameCounter()], 20))
        finally:
            stdin.write("quit\n")
            stdin.close()
            assert reader.wait(timeout=60) == 0
    assert [seq for seq, _, _ in answers] == [4, 8, 12, 16, 20]
    for seq, held, bad in answers:
        assert bad == [] and held >= seq  # every event flushed before the question is there
    with h5py.File(tmp_path / "live.h5", "r") as f:
        assert f.attrs["status"] == "success" and len(f["entry/primary/seq_num"][...].ravel()) == 20


def test_a_short_scalar_run_costs_kilobytes_not_a_megabyte_per_key(RE, tmp_path):
    """HDF5 stores a chunk whole from its first reading: a growing dataset's chunks are small."""
    RE.subscribe(HDF5Writer(tmp_path, file_prefix="short"))
    RE(bp.count([det], 5))
    with h5py.File(tmp_path / "short.h5", "r") as f:
        primary = f["entry/primary"]
        for name in ("det", "time", "seq_num"):
            assert primary[name].shape == (5,)
            assert primary[name].id.get_storage_size() <= 64 * 1024, name
    assert (tmp_path / "short.h5").stat().st_size < 512 * 1024

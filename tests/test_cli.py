"""The ``bluesky-zarr`` command line, driven as a user drives it: a subprocess on real files."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import suitcase.jsonl
import suitcase.msgpack
import xarray as xr
from bluesky import plans as bp
from command_line import bluesky_zarr
from documents import events
from formats import FORMATS, assert_holds
from ophyd.sim import det, det4, motor1, motor2
from stand_ins import FrameCounter
from stock import open_stream, variables_by_data_key

from bluesky_zarr import RunNotFoundError
from bluesky_zarr.devices import make_sim_instrument
from bluesky_zarr.plans import wavelength_position_scan


def runs_of(record):
    """The documents of each run, in order."""
    runs = []
    for name, doc in record:
        if name == "start":
            runs.append([])
        runs[-1].append((name, doc))
    return runs


@pytest.fixture
def saved(RE, record, tmp_path):
    """Three runs saved as suitcase-jsonl and suitcase-msgpack files (a grid of frames, a 1-D scan,
    a count), with the documents of each."""
    RE(bp.grid_scan([det4, FrameCounter()], motor1, -1, 1, 3, motor2, 0, 1, 2))
    RE(bp.scan([det], motor1, 0, 1, 4))
    RE(bp.count([det], 2))
    runs = runs_of(record)
    directory = tmp_path / "saved"
    for i, docs in enumerate(runs):
        (suitcase.jsonl if i % 2 == 0 else suitcase.msgpack).export(docs, directory)
    return directory, runs


def test_every_subcommand_has_help():
    for command in ([], ["export"], ["inspect"], ["finalize"], ["plot"]):
        done = bluesky_zarr(*command, "--help")
        assert done.returncode == 0 and "usage: bluesky-zarr" in done.stdout
    assert bluesky_zarr().returncode == 2  # no subcommand: a usage error


def test_export_writes_every_saved_run_and_skips_those_already_exported(saved, tmp_path):
    directory, runs = saved
    out = tmp_path / "out"
    done = bluesky_zarr("export", directory, out, "--format", "zarr,parquet")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("wrote") == 3 and "[3/3]" in done.stderr
    for docs in runs:
        uid = docs[0][1]["uid"]
        for fmt in (f for f in FORMATS if f.name in ("zarr", "parquet")):
            assert fmt.info(out, uid).status == "success"
            keys = sorted(events(docs)[0]["data"])
            assert_holds(fmt.readings(out, uid), events(docs), keys)
    grid = open_stream(out / f"{runs[0][0][1]['uid']}.zarr")
    assert grid["cam"].shape == (3, 2, 6, 4)  # on the scan's grid
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = bluesky_zarr("export", directory, out, "--format", "zarr,parquet")
    assert again.returncode == 0 and again.stderr.count("skipped, already exported") == 3
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamp  # nothing rewritten


def test_export_reports_a_bad_file_and_writes_the_others(saved, tmp_path):
    directory, runs = saved
    broken = sorted(directory.glob("*.jsonl"))[0]
    lines = broken.read_text().splitlines()
    broken.write_text("\n".join([*lines[:3], lines[3][:20], *lines[4:]]) + "\n")  # a torn line
    out = tmp_path / "out"
    done = bluesky_zarr("export", directory, out)
    assert done.returncode == 1
    assert f"{broken}, line 4: not JSON" in done.stderr and done.stderr.count("wrote") == 2
    for docs in runs:
        store = out / f"{docs[0][1]['uid']}.zarr"
        status = json.loads((store / "zarr.json").read_text())["attributes"]["status"]
        if broken.stem == docs[0][1]["uid"]:
            assert status != "success"  # its first events are kept, and it does not claim more
        else:
            assert status == "success"


def test_export_of_a_path_that_holds_no_documents_is_a_clear_error(tmp_path):
    done = bluesky_zarr("export", tmp_path, tmp_path / "out")
    assert done.returncode == 1 and "holds no document file" in done.stderr
    assert bluesky_zarr("export", tmp_path, tmp_path / "out", "--format", "hdf4").returncode == 2


def test_inspect_says_what_a_nested_scan_holds(RE, tmp_path):
    lab = make_sim_instrument(shape=(16, 12), exposure_time=0.001, fast=True)
    from bluesky_zarr import Parquet, Writer, Zarr

    RE.subscribe(Writer(tmp_path, Zarr(), Parquet(data_keys="scalars"), file_prefix="run"))
    RE(wavelength_position_scan(lab.detectors, lab.laser, (700, 720, 3), lab.stage, (0, 1, 2)))
    done = bluesky_zarr("inspect", tmp_path / "run.zarr", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert (
        "status success" in done.stdout
        and "grid wavelength 3 x position 2, 6 of 6 points written" in done.stdout
    )
    assert "camera_image             uint16   (wavelength, position, y, x) [3, 2, 16, 12]" in done.stdout
    assert "6 rows in primary.parquet" in done.stdout
    summary = json.loads(bluesky_zarr("inspect", "--json", tmp_path / "run.zarr").stdout)
    ds = xr.open_zarr(tmp_path / "run.zarr", group="primary")
    image = summary["streams"]["primary"]["arrays"]["camera_image"]
    assert image["shape"] == list(ds.camera_image.shape) and image["dtype"] == "uint16"
    assert image["dims"] == list(ds.camera_image.dims)
    on_disk = sum(p.stat().st_size for p in (tmp_path / "run.zarr" / "primary" / "camera_image").rglob("*"))
    assert image["bytes"] == on_disk
    table = json.loads(bluesky_zarr("inspect", "--json", tmp_path / "run").stdout)
    assert table["streams"]["primary"]["rows"] == pq.read_table(tmp_path / "run" / "primary.parquet").num_rows
    assert table["status"] == "success" and table["uid"] == summary["uid"]


@pytest.mark.parametrize("fmt", ["zarr", "parquet", "arrow", "hdf5"])
def test_inspect_a_killed_run(killed, fmt):
    directory = killed(fmt)
    (output,) = [f for f in FORMATS if f.name == fmt]
    path = output.output(directory, "crash")
    done = bluesky_zarr("inspect", "--json", path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "running"  # what the store says: the writer is gone, nobody finished it
    primary = summary["streams"]["primary"]
    if fmt == "zarr":
        written = int(np.count_nonzero(open_stream(path)["written"].values))
        assert 0 < primary["points_written"] == written < primary["points"]
        assert set(variables_by_data_key(open_stream(path))) <= {
            a["data_key"] for a in primary["arrays"].values()
        }
    elif fmt == "hdf5":  # read as a SWMR reader, as the killed writer left it
        with h5py.File(path, "r", swmr=True) as h5:
            written = int(np.count_nonzero(h5["entry/primary/written"][...]))
        assert 0 < primary["points_written"] == written < primary["points"]
    else:
        assert primary["rows"] > 0


def test_inspect_says_what_an_hdf5_file_and_a_csv_directory_hold(RE, tmp_path):
    """Every dataset as h5py sees it (shape, dtype, chunks, filters, bytes stored, the scales of its
    dimensions); every CSV row as pandas reads it."""
    lab = make_sim_instrument(shape=(128, 256), exposure_time=0.001, fast=True)
    from bluesky_zarr import CSV, HDF5, Writer

    RE.subscribe(Writer(tmp_path, HDF5(), CSV(data_keys="scalars"), file_prefix="run"))
    RE(wavelength_position_scan(lab.detectors, lab.laser, (700, 720, 3), lab.stage, (0, 1, 2)))
    done = bluesky_zarr("inspect", tmp_path / "run.h5", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert "run.h5: hdf5, run " in done.stdout and "6 of 6 points written" in done.stdout
    summary = json.loads(bluesky_zarr("inspect", "--json", tmp_path / "run.h5").stdout)
    assert summary["format"] == "hdf5" and summary["status"] == "success"
    arrays = summary["streams"]["primary"]["arrays"]
    with h5py.File(tmp_path / "run.h5", "r") as h5:
        group = h5["entry/primary"]
        assert set(arrays) == {k for k, v in group.items() if isinstance(v, h5py.Dataset)}
        image = group["camera_image"]
        assert arrays["camera_image"]["shape"] == list(image.shape) == [3, 2, 128, 256]
        assert arrays["camera_image"]["chunks"] == list(image.chunks) == [1, 1, 128, 256]
        assert arrays["camera_image"]["codecs"] == ["shuffle", "gzip 1"]  # a frame of 64 KiB or more
        assert arrays["camera_image"]["bytes"] == image.id.get_storage_size()
        assert arrays["camera_image"]["dims"] == [
            "wavelength",
            "position",
            *arrays["camera_image"]["dims"][2:],
        ]
        assert arrays["wavelength"]["dims"] == ["wavelength"]  # a scale is its own dimension
    table = json.loads(bluesky_zarr("inspect", "--json", tmp_path / "run").stdout)
    assert table["streams"]["primary"]["rows"] == len(pd.read_csv(tmp_path / "run" / "primary.csv")) == 6
    assert "camera_image" not in table["streams"]["primary"]["columns"]


def test_open_run_and_quick_look_read_an_hdf5_file_as_the_zarr_store(RE, tmp_path):
    """One scan written as Zarr and as HDF5: the same tree of streams from open_run, the same
    quick look."""
    lab = make_sim_instrument(shape=(16, 12), exposure_time=0.001, fast=True)
    from bluesky_zarr import HDF5, Writer, Zarr, open_run, quick_look

    RE.subscribe(Writer(tmp_path, Zarr(), HDF5(), file_prefix="run"))
    RE(wavelength_position_scan(lab.detectors, lab.laser, (700, 720, 3), lab.stage, (0, 1, 2)))
    zarr_tree, hdf5_tree = open_run(tmp_path / "run.zarr"), open_run(tmp_path / "run.h5")
    assert set(hdf5_tree.children) == set(zarr_tree.children)
    assert hdf5_tree.attrs["status"] == zarr_tree.attrs["status"] == "success"
    assert json.loads(hdf5_tree.attrs["start"]) == json.loads(zarr_tree.attrs["start"])
    by_zarr, by_hdf5 = zarr_tree["primary"].to_dataset(), hdf5_tree["primary"].to_dataset()
    for name in ("camera_image", "power_meter_power", "written", "seq_num"):
        np.testing.assert_array_equal(by_hdf5[name].values, by_zarr[name].values, err_msg=name)
        assert by_hdf5[name].dims[:2] == by_zarr[name].dims[:2] == ("wavelength", "position")
    np.testing.assert_array_equal(by_hdf5.wavelength.values, by_zarr.wavelength.values)
    point = {"wavelength": 710, "position": 1}
    lines = [
        quick_look(p, sel=point).axes[1].lines[0].get_ydata()
        for p in (tmp_path / "run.zarr", tmp_path / "run.h5")
    ]
    np.testing.assert_allclose(lines[0], lines[1])
    with pytest.raises(RunNotFoundError, match="does not exist"):
        open_run(tmp_path / "missing.h5")


def test_plot_of_a_store_in_a_bucket_finds_the_server_in_the_environment(s3_endpoint, bucket, RE, tmp_path):
    """AWS_ENDPOINT_URL (as the AWS tools take it) points the command line at a facility's server."""
    from bluesky_zarr import ZarrWriter

    RE.subscribe(
        ZarrWriter(f"s3://{bucket}/runs", file_prefix="run", storage_options={"endpoint_url": s3_endpoint})
    )
    RE(bp.grid_scan([FrameCounter(shape=(8, 8)), det], motor1, 0, 1, 3, motor2, 0, 1, 2))
    out = tmp_path / "bucket.png"
    env = {**os.environ, "AWS_ENDPOINT_URL": s3_endpoint}
    done = bluesky_zarr("plot", f"s3://{bucket}/runs/run.zarr", "-o", out, env=env)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0


def test_inspect_of_something_else_is_a_clear_error(tmp_path):
    shutil.copy(__file__, tmp_path / "notes.txt")
    done = bluesky_zarr("inspect", tmp_path)
    assert done.returncode == 1 and "neither a run's Zarr store" in done.stderr


@pytest.fixture
def nested_run(RE, tmp_path):
    """A wavelength x position scan of this package's simulated instrument, in a Zarr store."""
    lab = make_sim_instrument(shape=(24, 32), exposure_time=0.001, fast=True)
    from bluesky_zarr import ZarrWriter

    RE.subscribe(ZarrWriter(tmp_path, file_prefix="run"))
    RE(wavelength_position_scan(lab.detectors, lab.laser, (700, 760, 4), lab.stage, (0, 2, 3)))
    return tmp_path / "run.zarr"


def test_quick_look_draws_the_frame_and_the_spectrum_from_the_data(nested_run):
    from bluesky_zarr import quick_look

    figure = quick_look(nested_run, sel={"wavelength": 741, "position": 1.1})  # nearest: 740, 1
    frame_axes, spectrum_axes = figure.axes[:2]  # then the colorbar
    ds = xr.open_zarr(nested_run, group="primary")
    frame = ds.camera_image.sel(wavelength=740, position=1).values
    np.testing.assert_array_equal(frame_axes.images[0].get_array(), frame)
    (line,) = spectrum_axes.lines
    np.testing.assert_allclose(line.get_xdata(), ds.wavelength.values)
    expected = ds.camera_image.sel(position=1).mean(dim=["y", "x"]).values
    np.testing.assert_allclose(line.get_ydata(), expected)
    assert spectrum_axes.get_xlabel() == "wavelength (nm)"
    assert spectrum_axes.get_ylabel() == "mean camera_image (counts)"
    assert "wavelength=740 nm, position=1 mm" in frame_axes.get_title()


def test_plot_writes_a_png_of_the_figure(nested_run, tmp_path):
    import matplotlib.image

    out = tmp_path / "look.png"
    done = bluesky_zarr("plot", nested_run, "--sel", "wavelength=720", "--key", "camera_image", "-o", out)
    assert done.returncode == 0, done.stderr
    assert matplotlib.image.imread(out).shape[:2] == (400, 1000)  # 10 x 4 inches at 100 dpi
    bad = bluesky_zarr("plot", nested_run, "--sel", "temperature=3", "-o", out)
    assert bad.returncode == 1 and "no grid dimension ['temperature']" in bad.stderr
    assert bluesky_zarr("plot", nested_run, "--sel", "wavelength").returncode == 2
    missing = bluesky_zarr("plot", nested_run, "--key", "nothing", "-o", out)
    assert missing.returncode == 1 and "no frames of data key 'nothing'" in missing.stderr


def test_plot_of_a_killed_run_draws_what_it_holds(killed, tmp_path):
    """A killed grid scan's store: the frame at a point the written mask vouches for, and the
    spectrum with the points never written left out; then the same after finalize."""
    store = killed("zarr") / "crash.zarr"
    out = tmp_path / "killed.png"
    done = bluesky_zarr("plot", store, "--sel", "motor1=0", "--sel", "motor2=0", "-o", out)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0
    assert bluesky_zarr("finalize", store).returncode == 0
    again = bluesky_zarr("plot", store, "--sel", "motor1=0", "-o", tmp_path / "finalized.png")
    assert again.returncode == 0, again.stderr

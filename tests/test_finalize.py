"""``finalize`` and ``bluesky-zarr finalize``: a run whose writer was killed becomes a finished,
consistent output that every stock reader opens; a run still being written is refused, and so is
a second writer on a live output."""

from __future__ import annotations

import json
import random

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xarray as xr
from bluesky import plans as bp
from command_line import bluesky_zarr
from formats import FORMATS
from ophyd.sim import det
from processes import FLUSHED, kill_after_flush, kill_at
from s3 import fsspec_store
from stand_ins import FrameCounter
from stock import open_stream
from tables import read_parquet

from bluesky_zarr import (
    CSV,
    CorruptDataError,
    HDF5Writer,
    OutputBusyError,
    RunNotFoundError,
    Writer,
    ZarrWriter,
    export,
    finalize,
    open_run,
)


def output_of(directory, fmt):
    """The output of the run ``crash`` in format ``fmt``: a store, a directory or a file."""
    (output,) = [f for f in FORMATS if f.name == fmt]
    return output.output(directory, "crash")


def snapshot(path):
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {p: p.read_bytes() for p in files}


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_a_live_writer_is_refused_and_the_killed_one_finalized_once(tmp_path, fmt):
    """While the writer process runs, finalize (the function and the command) refuses, names the
    process and changes nothing; once it is killed, finalize finishes the run, and again does nothing."""
    output = output_of(tmp_path, fmt.name)
    seen = {}

    def while_alive(pid):
        before = snapshot(output)
        with pytest.raises(OutputBusyError, match=f"process {pid} on ") as caught:
            finalize(output)
        seen["error"] = str(caught.value)
        done = bluesky_zarr("finalize", output)
        seen["cli"] = (done.returncode, done.stderr)
        after = snapshot(output)  # nothing finished under the writer's feet (which writes on)
        assert before.keys() <= after.keys()
        assert not any(b"bluesky_zarr.finalize" in data for data in after.values())

    kill_after_flush(tmp_path, fmt.name, while_alive)
    assert str(output) in seen["error"] and "once that writer has stopped" in seen["error"]
    assert seen["cli"][0] == 3 and "not finalized" in seen["cli"][1]

    done = bluesky_zarr("finalize", output)
    assert done.returncode == 0, done.stderr
    assert "finalized (status incomplete)" in done.stderr
    info, readings = fmt.info(tmp_path, "crash"), fmt.readings(tmp_path, "crash")
    assert info.status == "incomplete"
    assert set(range(1, FLUSHED + 1)) <= set(readings.seq_nums())
    assert not list(tmp_path.rglob(".*.writing")) and not fmt.leftovers(tmp_path, "crash")

    finished = snapshot(output)
    again = bluesky_zarr("finalize", output)
    assert again.returncode == 0 and "finished already, left as it is" in again.stderr
    assert snapshot(output) == finished  # idempotent: not a byte changed


@pytest.mark.parametrize("fmt", ["zarr", "parquet", "arrow", "hdf5"])
def test_a_writer_killed_at_random_moments_finalizes_to_a_consistent_run(tmp_path, fmt):
    """A 1-D scan of frames killed at random moments of its writing: after finalize every stock
    reader opens it, every array has one length, and each event read is the one taken."""
    rng = random.Random()
    for i in range(2):
        directory = tmp_path / f"kill-{i}"
        delay = rng.uniform(0.05, 1.5)
        kill_at(directory, fmt, delay)
        output = output_of(directory, fmt)
        primary = ("zarr", "primary.parquet", "primary.arrows", ".h5")
        (done,) = [d for d in finalize(output) if d.path.endswith(primary)]
        assert done.status == "incomplete", (delay, done)
        if fmt == "zarr":
            ds = xr.open_zarr(output, group="primary", zarr_format=3)  # one length, or xarray refuses
            tree = open_run(output)
            assert tree.attrs["status"] == "incomplete"
            seq, frames = ds["seq_num"].values, ds["cam"].values
        elif fmt == "hdf5":  # finished: any HDF5 reader opens it, no SWMR reader needed
            ds = xr.open_dataset(output, engine="h5netcdf", group="entry/primary")  # one length, or refused
            with h5py.File(output, "r") as h5:
                assert h5.attrs["status"] == "incomplete"
            seq, frames = ds["seq_num"].values, ds["cam"].values
        elif fmt == "parquet":
            table = read_parquet(output / "primary.parquet").arrow
            seq = np.asarray(table["seq_num"])
            frames = np.stack([np.asarray(f).reshape(8, 8) for f in table["cam"].to_pylist()])
        else:
            with pa.ipc.open_stream(output / "primary.arrows") as reader:  # ends cleanly now
                table = reader.read_all()
            seq = np.asarray(table["seq_num"])
            frames = np.stack([np.asarray(f).reshape(8, 8) for f in table["cam"].to_pylist()])
        assert len(seq) > 0, delay
        np.testing.assert_array_equal(seq, np.arange(1, len(seq) + 1))
        np.testing.assert_array_equal(frames[:, 0, 0], seq + 1)  # frame 1 is taken at creation


def test_a_1d_stream_cut_between_its_arrays_gets_one_length(RE, tmp_path):
    """A kill between two arrays' metadata leaves one array a row longer (xarray refuses the group);
    finalize gives every array the length all of them published, and says what it left out."""
    writer = ZarrWriter(tmp_path, file_prefix="cut")
    RE.subscribe(writer)
    RE(bp.count([FrameCounter(), det], 5))
    store = tmp_path / "cut.zarr"
    root = json.loads((store / "zarr.json").read_text())
    root["attributes"]["status"] = "running"  # as the killed writer left it
    del root["consolidated_metadata"]
    (store / "zarr.json").write_text(json.dumps(root))
    for name in ("time", "seq_num"):
        meta = json.loads((store / "primary" / name / "zarr.json").read_text())
        meta["shape"] = [4]  # the last row published by cam and det only
        (store / "primary" / name / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="conflicting sizes"):
        xr.open_zarr(store, group="primary", consolidated=False, zarr_format=3)

    (done,) = finalize(store)
    assert done.changed and done.status == "incomplete"
    assert any("'cam'" in note and "1 row(s)" in note for note in done.notes), done.notes
    ds = open_stream(store, "primary")
    assert ds.sizes["time"] == 4
    np.testing.assert_array_equal(ds["cam"].values[:, 0, 0], [2, 3, 4, 5])
    assert json.loads(open_run(store).attrs["finalized"])["notes"] == list(done.notes)


def test_a_widening_cut_short_puts_the_array_back(RE, tmp_path):
    """Killed between moving an array aside to widen it and moving the widened copy in: the array is
    back as it was."""
    RE.subscribe(ZarrWriter(tmp_path, file_prefix="w"))
    RE(bp.count([det], 3))
    store = tmp_path / "w.zarr"
    (store / "primary" / "det").rename(store / "primary" / ".det.retired")
    (store / "primary" / ".det.widening").mkdir()
    root = json.loads((store / "zarr.json").read_text())
    root["attributes"]["status"] = "running"
    (store / "zarr.json").write_text(json.dumps(root))

    (done,) = finalize(store)
    assert any("widening" in note for note in done.notes)
    assert sorted(p.name for p in (store / "primary").iterdir() if p.name.startswith(".")) == []
    assert open_stream(store, "primary")["det"].size == 3


@pytest.mark.parametrize("fmt", ["zarr", "parquet", "arrow", "hdf5"])
def test_a_second_writer_on_a_live_output_is_refused(tmp_path, RE, record, fmt):
    """overwrite=True on an output that a live process writes is an OutputBusyError naming that
    process, and the live run is left whole."""
    RE(bp.count([det], 2))  # documents of another run, exported over the live one

    def while_alive(pid):
        with pytest.raises(OutputBusyError, match=f"process {pid}"):
            export(record, tmp_path, "crash", format=fmt, overwrite=True)

    kill_after_flush(tmp_path, fmt, while_alive)
    finalize(output_of(tmp_path, fmt))
    (output,) = [f for f in FORMATS if f.name == fmt]
    assert set(range(1, FLUSHED + 1)) <= set(output.readings(tmp_path, "crash").seq_nums())


def test_finalize_refuses_what_is_no_run(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RunNotFoundError, match="holds no run output"):
        finalize(tmp_path)
    with pytest.raises(RunNotFoundError, match="does not exist"):
        finalize(tmp_path / "missing.zarr")
    done = bluesky_zarr("finalize", tmp_path)
    assert done.returncode == 1 and "holds no run output" in done.stderr


def test_finalize_in_a_bucket_needs_force(s3_endpoint, bucket, RE, record):
    """Object storage holds no lock: finalize says so unless forced; forced, the bucket's run is
    finished and reads with a stock zarr store."""
    RE(bp.count([FrameCounter(), det], 4))
    url = f"s3://{bucket}/data"
    options = {"endpoint_url": s3_endpoint}
    writer = Writer(url, "zarr", file_prefix="cut", storage_options=options)
    for name, doc in record[:-1]:  # no stop document: the writer is lost before the run ends
        writer(name, doc)
    writer.flush()
    store_url = f"{url}/cut.zarr"
    with pytest.raises(OutputBusyError, match="force"):
        finalize(store_url, storage_options=options)
    (done,) = finalize(store_url, storage_options=options, force=True)
    assert done.changed and done.status == "incomplete"
    ds = xr.open_zarr(fsspec_store(s3_endpoint, store_url), group="primary", zarr_format=3)
    assert ds.sizes["time"] == 4 and ds.attrs["stream"] == "primary"
    root = xr.open_datatree(fsspec_store(s3_endpoint, store_url), engine="zarr", zarr_format=3)
    assert root.attrs["status"] == "incomplete"
    writer.close()  # the writer object of this process is still there: let it end before the server does


def test_a_csv_row_cut_short_is_dropped(RE, tmp_path):
    """A kill in the middle of an append leaves a last row with no line end: finalize drops it
    (CSV holds no status to change), and leaves the file alone after that."""
    RE.subscribe(Writer(tmp_path, CSV(data_keys="scalars"), file_prefix="c"))
    RE(bp.count([det], 3))
    path = tmp_path / "c" / "primary.csv"
    whole = path.read_bytes()
    path.write_bytes(whole + b"1764790000.5,4,")

    (done,) = finalize(tmp_path / "c")
    assert done.changed and "cut short" in done.notes[0]
    assert path.read_bytes() == whole
    assert pd.read_csv(path)["seq_num"].tolist() == [1, 2, 3]
    (again,) = finalize(tmp_path / "c")
    assert not again.changed


def test_an_hdf5_superblock_that_does_not_check_out_is_left_alone(RE, tmp_path):
    """The open-for-writing mark is cleared only when the superblock's checksum is the one HDF5
    computes: a damaged file is refused by name and left byte for byte."""
    RE.subscribe(HDF5Writer(tmp_path, file_prefix="h"))
    RE(bp.count([det], 3))
    path = tmp_path / "h.h5"
    damaged = bytearray(path.read_bytes())
    damaged[11] = 0b101  # the flags of a SWMR writer, without the checksum that goes with them
    path.write_bytes(damaged)

    with pytest.raises(CorruptDataError, match=f"{path}: the checksum of its superblock"):
        finalize(path)
    assert path.read_bytes() == damaged

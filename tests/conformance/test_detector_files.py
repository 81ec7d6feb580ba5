"""Every format: frames that detectors write into their own HDF5 files land like inline frames.

ophyd-async detectors report frames with StreamResource/StreamDatum documents (the file, the
dataset, which frames belong to which events); the legacy areaDetector specs ``AD_HDF5`` and
``AD_HDF5_SWMR`` with Resource/Datum. The writer reads the frames (h5py) and places them on the
grid; a frame it cannot read costs only itself (quarantined, named by file, dataset and frame).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import event_model
import h5py
import numpy as np
import pytest
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from documents import events
from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimStage

from bluesky_zarr import export
from bluesky_zarr.plans import nested_scan


@pytest.fixture
def blob(RE, tmp_path):
    """ophyd-async's own simulated detector (HDF5 + StreamResource) and stage, on the test's RunEngine."""
    files = tmp_path / "detector"
    files.mkdir()
    with init_devices():
        pattern = PatternGenerator()
        det = SimBlobDetector(StaticPathProvider(StaticFilenameProvider("blob"), files), pattern, name="det")
        stage = SimStage(pattern, name="stage")
    RE(bps.mv(stage.x.velocity, 1000, stage.y.velocity, 1000))  # moves take no time
    return det, stage, files / "blob.h5"


def frames_in(path: Path, dataset: str = "/entry/data/data") -> np.ndarray:
    with h5py.File(path, "r", locking=False) as f:
        return np.asarray(f[dataset])


def stored(fmt, directory, prefix, key, stream="primary"):
    """seq_num -> reading of ``key``, as the output holds it (stock readers only)."""
    return {r.seq_num: r.data[key] for r in fmt.readings(directory, prefix, stream).rows}


def detector_files(fmt, directory, prefix, key):
    """The detector files the output says a key was read from."""
    if fmt.name == "hdf5":
        from stock import open_hdf5_stream, variables_by_data_key

        ds = open_hdf5_stream(fmt.output(directory, prefix))
        return ds[variables_by_data_key(ds)[key]].attrs["detector_files"]
    if fmt.name == "zarr":
        import xarray as xr

        ds = xr.open_zarr(fmt.output(directory, prefix), group="primary")
        return json.loads(ds[key].attrs["detector_files"])
    from tables import read_any

    path = fmt.pieces(directory, prefix)[-1] if fmt.name == "arrow" else fmt.stream_file(directory, prefix)
    if fmt.name == "arrow":
        from tables import whole_batches

        return whole_batches(path)[-1][1]["detector_files"][key]
    return json.loads(read_any(path).arrow.schema.metadata[b"detector_files"])[key]


def test_an_ophyd_async_detector_lands_frame_for_frame(RE, record, tmp_path, fmt, blob):
    det, _, h5 = blob
    RE.subscribe(fmt.writer(tmp_path / "out"))
    (uid,) = RE(bp.count([det], num=3))
    assert {n for n, _ in record} >= {"stream_resource", "stream_datum"}
    info = fmt.info(tmp_path / "out", uid)
    assert (info.status, info.errors, info.quarantined) == ("success", [], [])
    frames, sums = frames_in(h5), frames_in(h5, "/entry/sum")
    got = stored(fmt, tmp_path / "out", uid, "det")
    assert sorted(got) == [1, 2, 3]
    for i, seq_num in enumerate(sorted(got)):
        np.testing.assert_array_equal(got[seq_num], frames[i])  # one frame per event: no leading axis
        assert got[seq_num].dtype == frames.dtype
    assert [int(v) for v in stored(fmt, tmp_path / "out", uid, "det-sum").values()] == sums.tolist()
    source = detector_files(fmt, tmp_path / "out", uid, "det")
    assert source == [
        {"uri": f"file://localhost{h5}", "dataset": "/entry/data/data", "mimetype": "application/x-hdf5"}
    ]


@pytest.mark.parametrize("plan", ["grid_scan", "nested_scan"])
def test_detector_frames_land_on_the_scan_grid(RE, record, tmp_path, fmt, blob, plan):
    det, stage, h5 = blob
    RE.subscribe(fmt.writer(tmp_path))
    if plan == "grid_scan":
        (uid,) = RE(bp.grid_scan([det], stage.x, -1, 1, 3, stage.y, 0, 1, 2))
    else:
        (uid,) = RE(nested_scan([det], (stage.x, [-1.0, 0.0, 1.0]), (stage.y, [0.0, 1.0])))
    assert fmt.info(tmp_path, uid).status == "success"
    frames = frames_in(h5)
    rows = fmt.readings(tmp_path, uid).rows
    assert sorted(r.index for r in rows) == [(i, j) for i in range(3) for j in range(2)]
    for row in rows:  # frame k of the file is the frame of the event with seq_num k + 1
        np.testing.assert_array_equal(row.data["det"], frames[row.seq_num - 1])


def test_a_missing_detector_file_costs_only_its_frames(RE, record, tmp_path, fmt, blob):
    det, stage, h5 = blob
    RE(bp.scan([det], stage.x, 0, 1, 3))
    h5.unlink()  # the detector's file is gone when the run is exported
    export(record, tmp_path / "out", format=fmt.name, frame_timeout=0.2)
    uid = record[0][1]["uid"]
    info = fmt.info(tmp_path / "out", uid)
    assert info.status == "partial" and info.errors == []
    assert info.quarantined[0].startswith("stream 'primary': 3 reading(s) of data key 'det'")
    positions = stored(fmt, tmp_path / "out", uid, "stage-x")  # the rest of the run lands
    assert [float(v) for v in positions.values()] == [e["data"]["stage-x"] for e in events(record)]
    kept = fmt.readings(tmp_path / "out", uid, "primary_quarantine").rows
    first = next(r for r in kept if r.data["data_key"] == "det")
    assert first.seq_num == 1 and json.loads(first.data["value"]) is None
    assert f"file '{h5}', dataset '/entry/data/data', frames 0 to 0" in first.data["reason"]


def test_a_short_file_keeps_the_frames_it_holds(RE, record, tmp_path, fmt, blob):
    det, _, h5 = blob
    RE(bp.count([det], num=3))
    frames = frames_in(h5)
    sums = frames_in(h5, "/entry/sum")
    with h5py.File(h5, "w") as f:  # the file as a detector that stopped after two frames left it
        f["/entry/data/data"] = frames[:2]
        f["/entry/sum"] = sums[:2]
    export(record, tmp_path / "out", format=fmt.name, frame_timeout=0.1)
    uid = record[0][1]["uid"]
    assert fmt.info(tmp_path / "out", uid).status == "partial"
    got = stored(fmt, tmp_path / "out", uid, "det")
    np.testing.assert_array_equal(np.stack([got[1], got[2]]), frames[:2])
    reason = next(
        r.data["reason"]
        for r in fmt.readings(tmp_path / "out", uid, "primary_quarantine").rows
        if r.seq_num == 3
    )
    assert "frames 2 to 2: not there" in reason and "the dataset holds 2 frames" in reason


WRITER = textwrap.dedent(
    """
    import sys, time, h5py, numpy as np
    path, n = sys.argv[1], int(sys.argv[2])
    with h5py.File(path, "w", libver="latest") as f:
        data = f.create_dataset("/entry/data/data", shape=(0, 4, 4), maxshape=(None, 4, 4), dtype="<u2")
        f.swmr_mode = True
        print("ready", flush=True)
        for i in range(n):
            time.sleep(0.2)
            data.resize((i + 1, 4, 4))
            data[i] = i + 1
            data.flush()
    """
)


def stream_run(h5: Path, n: int, per_event: int = 1, *, events: bool = True) -> list[tuple[str, dict]]:
    """A run whose frames are in ``h5`` (StreamResource/StreamDatum, ``per_event`` frames an event)."""
    run = event_model.compose_run()
    shape = [per_event, 4, 4]
    data_keys = {
        "cam": {"dtype": "array", "dtype_numpy": "<u2", "shape": shape, "source": "x", "external": "STREAM:"}
    }
    desc = run.compose_descriptor(name="primary", data_keys=data_keys)
    resource = run.compose_stream_resource(
        mimetype="application/x-hdf5", uri=f"file://localhost{h5}", data_key="cam",
        parameters={"dataset": "/entry/data/data", "chunk_shape": [1, 4, 4]},
    )  # fmt: skip
    docs = [
        ("start", run.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("stream_resource", resource.stream_resource_doc),
    ]
    events_ = n // per_event if events else 0
    seq_nums = {"start": 1, "stop": events_ + 1} if events else {"start": 0, "stop": 0}  # a fly scan's
    docs.append(("stream_datum", resource.compose_stream_datum(
        indices={"start": 0, "stop": n}, seq_nums=seq_nums,
        descriptor=desc.descriptor_doc,
    )))  # fmt: skip
    for i in range(1, events_ + 1):
        docs.append(("event", desc.compose_event(data={}, timestamps={}, seq_num=i)))
    docs.append(("stop", run.compose_stop()))
    return docs


def test_a_file_still_being_written_is_read_once_it_holds_the_frames(tmp_path, fmt):
    h5 = tmp_path / "swmr.h5"
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(h5), "4"], stdout=subprocess.PIPE, text=True
    ) as writer:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        docs = stream_run(h5, 4)  # the frames come 0.2 s apart, after the documents
        export(docs, tmp_path / "out", "live", format=fmt.name, frame_timeout=30)
        assert writer.wait(timeout=30) == 0
    assert fmt.info(tmp_path / "out", "live").status == "success"
    got = stored(fmt, tmp_path / "out", "live", "cam")
    assert [int(got[s][0, 0]) for s in sorted(got)] == [1, 2, 3, 4]


def test_several_frames_per_event_give_an_extra_dimension(tmp_path, fmt):
    h5 = tmp_path / "frames.h5"
    with h5py.File(h5, "w") as f:
        f["/entry/data/data"] = np.arange(6 * 16, dtype="<u2").reshape(6, 4, 4)
    export(stream_run(h5, 6, per_event=2), tmp_path / "out", "multi", format=fmt.name)
    got = stored(fmt, tmp_path / "out", "multi", "cam")
    assert sorted(got) == [1, 2, 3] and got[1].shape == (2, 4, 4)
    np.testing.assert_array_equal(np.stack([got[s] for s in (1, 2, 3)]), frames_in(h5).reshape(3, 2, 4, 4))


def test_legacy_area_detector_hdf5_needs_no_handler(tmp_path, fmt):
    """areaDetector's HDF5 plugin through ophyd (Resource/Datum, spec AD_HDF5): read without a handler."""
    h5 = tmp_path / "ad" / "image_000.h5"
    h5.parent.mkdir()
    with h5py.File(h5, "w") as f:
        f["/entry/data/data"] = np.arange(3 * 12, dtype="<u2").reshape(3, 3, 4)
    run = event_model.compose_run()
    keys = {
        "image": {
            "dtype": "array",
            "dtype_numpy": "<u2",
            "shape": [3, 4],
            "source": "PV:AD",
            "external": "FILESTORE:",
        }
    }
    desc = run.compose_descriptor(name="primary", data_keys=keys)
    resource = run.compose_resource(
        spec="AD_HDF5", root=str(h5.parent), resource_path=h5.name, resource_kwargs={"frame_per_point": 1}
    )
    docs = [
        ("start", run.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("resource", resource.resource_doc),
    ]
    for i in range(3):
        datum = resource.compose_datum(datum_kwargs={"point_number": i})
        event = desc.compose_event(
            data={"image": datum["datum_id"]},
            timestamps={"image": 0.0},
            seq_num=i + 1,
            filled={"image": False},
        )
        docs += [("datum", datum), ("event", event)]
    docs.append(("stop", run.compose_stop()))
    export(docs, tmp_path / "out", "ad", format=fmt.name)
    assert fmt.info(tmp_path / "out", "ad").status == "success"
    got = stored(fmt, tmp_path / "out", "ad", "image")
    np.testing.assert_array_equal(np.stack([got[s] for s in (1, 2, 3)]), frames_in(h5))


def test_frames_of_no_event_are_never_reported_as_written(tmp_path, fmt):
    """A fly scan's stream_datum with no events: its frames are not copied, and the run says so."""
    h5 = tmp_path / "fly.h5"
    with h5py.File(h5, "w") as f:
        f["/entry/data/data"] = np.zeros((4, 4, 4), "<u2")
    export(stream_run(h5, 4, events=False), tmp_path / "out", "fly", format=fmt.name)
    info = fmt.info(tmp_path / "out", "fly")
    assert info.status == "fail"
    assert any("frames 0 to 3 of data key 'cam'" in e and "not copied" in e for e in info.errors)

"""Every format: a bad reading costs only itself, external data is filled or refused clearly, and any
document stream round-trips (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from bluesky import plans as bp
from documents import composed_run, events, expected_indices, run_documents, runs, snaking
from formats import assert_holds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ophyd.sim import NumpySeqHandler, img
from stand_ins import BrokenCamera

from bluesky_zarr import DocumentError, export


def test_a_reading_of_the_wrong_shape_fails_the_run_loudly_and_keeps_the_rest(RE, record, tmp_path, fmt):
    RE.subscribe(fmt.writer(tmp_path))
    with pytest.raises(
        DocumentError, match=r"data key 'cam' has readings of shape \[5, 4\].*declares \[6, 4\]"
    ):
        RE(bp.count([BrokenCamera()], 5))
    uid = record[0][1]["uid"]
    info = fmt.info(tmp_path, uid)
    assert info.status == "fail"
    assert any("data key 'cam'" in error for error in info.errors)
    assert_holds(fmt.readings(tmp_path, uid), events(record)[:2], ["cam"])


KEYS = {
    "det": {"dtype": "number", "shape": [], "source": "d"},
    "cam": {"dtype": "array", "dtype_numpy": "<u2", "shape": [2, 2], "source": "c"},
}


def test_a_bad_reading_costs_only_its_own_event_and_the_writer_goes_on(tmp_path, fmt):
    rows = [{"det": float(i), "cam": np.full((3, 2) if i == 3 else (2, 2), i, "<u2")} for i in range(1, 6)]
    docs = composed_run(KEYS, rows)
    writer = fmt.writer(tmp_path, file_prefix="bad")
    raised = []
    for name, doc in docs:
        try:
            writer(name, doc)
        except DocumentError as err:
            raised.append(str(err))
    writer.close()
    assert len(raised) == 1 and "data key 'cam' has readings of shape [3, 2]" in raised[0]
    info = fmt.info(tmp_path, "bad")
    assert info.status == "fail" and any("data key 'cam'" in error for error in info.errors)
    kept = [e for e in events(docs) if e["seq_num"] != 3]
    assert_holds(fmt.readings(tmp_path, "bad"), kept, ["det", "cam"])


def test_external_data_is_filled_through_the_handler(RE, record, tmp_path, fmt):
    RE.subscribe(fmt.writer(tmp_path, handler_registry={"NPY_SEQ": NumpySeqHandler}))
    (uid,) = RE(bp.count([img], 3))
    # the frames are what the handler reads from the detector's own files
    resource = next(d for n, d in record if n == "resource")
    handler = NumpySeqHandler(
        f"{resource['root']}/{resource['resource_path']}", **resource["resource_kwargs"]
    )
    expected = np.stack([handler(**d["datum_kwargs"]) for n, d in record if n == "datum"])
    frames = np.stack([r.data["img"] for r in fmt.readings(tmp_path, uid).rows])
    assert frames.shape == (3, 10, 10)
    np.testing.assert_array_equal(frames, expected)


def test_external_data_without_a_handler_is_a_clear_error(RE, record, tmp_path, fmt):
    RE(bp.count([img], 1))
    with pytest.raises(DocumentError, match=r"'img' is external .*handler_registry"):
        export(record, tmp_path, format=fmt.name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=runs(), seed=st.integers(0, 2**32 - 1))
def test_any_document_stream_round_trips(fmt, spec, seed):
    docs, evs = run_documents(spec, np.random.default_rng(seed))
    uid = docs[0][1]["uid"]
    with tempfile.TemporaryDirectory() as tmp:
        export(docs, tmp, format=fmt.name)
        assert fmt.info(Path(tmp), uid).status == "success"
        readings = fmt.readings(Path(tmp), uid)
        assert_holds(readings, evs, list(spec["keys"]))
        if spec["grid"]:
            order = expected_indices(spec["grid"], snaking(spec))
            index = {r.seq_num: r.index for r in readings.rows}
            on_grid = min(len(evs), len(order))
            assert [index[e["seq_num"]] for e in evs[:on_grid]] == order[:on_grid]
            # events past the end of the grid are kept under no point (Zarr: the overflow group;
            # tables: null indices in every reader), in the order they came
            off_grid = [r.seq_num for r in readings.rows if r.index is None]
            assert off_grid == [e["seq_num"] for e in evs[on_grid:]]

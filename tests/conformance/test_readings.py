"""Every format: a bad reading costs only itself, external data is filled or refused clearly, and any
document stream round-trips (hypothesis)."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from bluesky import plans as bp
from documents import composed_run, events, expected_indices, run_documents, runs, snaking
from formats import Readings, assert_holds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ophyd.sim import NumpySeqHandler, det, img
from stand_ins import BrokenCamera

from bluesky_zarr import BlueskyZarrError, DocumentError, export


def assert_quarantined(fmt, directory, prefix, expected):
    """The quarantine stream holds exactly ``expected``: (seq_num, data key, reading) triples."""
    rows = fmt.readings(directory, prefix, "primary_quarantine").rows
    held = [(r.seq_num, r.data["data_key"], json.loads(r.data["value"])) for r in rows]
    assert [(s, k) for s, k, _ in held] == [(s, k) for s, k, _ in expected]
    for (_, _, got), (_, _, reading) in zip(held, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(got), reading)
    assert all(r.data["reason"] for r in rows)


def test_a_reading_of_the_wrong_shape_costs_only_itself_and_is_quarantined(RE, record, tmp_path, fmt, caplog):
    RE.subscribe(fmt.writer(tmp_path))
    RE(bp.count([BrokenCamera()], 5))  # the scan goes on
    uid = record[0][1]["uid"]
    info = fmt.info(tmp_path, uid)
    assert info.status == "partial" and info.errors == []
    assert info.quarantined == [
        "stream 'primary': 3 reading(s) of data key 'cam' could not be stored and are in stream "
        "'primary_quarantine'"
    ]
    warned = [r.getMessage() for r in caplog.records if "holds a reading of shape [5, 4]" in r.getMessage()]
    assert len(warned) == 1 and uid in warned[0] and "'cam'" in warned[0]  # once per key, not per event
    evs = events(record)
    readings = fmt.readings(tmp_path, uid)
    assert readings.seq_nums() == [1, 2, 3, 4, 5]  # every event is there; three without their frame
    assert_holds(Readings(readings.rows[:2], readings.in_event_order), evs[:2], ["cam"])
    assert_quarantined(fmt, tmp_path, uid, [(e["seq_num"], "cam", e["data"]["cam"]) for e in evs[2:]])


def test_with_on_error_raise_a_bad_reading_stops_the_scan(RE, record, tmp_path, fmt):
    RE.subscribe(fmt.writer(tmp_path, on_error="raise"))
    with pytest.raises(
        DocumentError, match=r"data key 'cam' of the event with seq_num \d holds a reading of shape \[5, 4\]"
    ):
        RE(bp.count([BrokenCamera()], 5))
    uid = record[0][1]["uid"]
    info = fmt.info(tmp_path, uid)
    assert info.status == "fail" and any("data key 'cam'" in error for error in info.errors)
    assert_holds(fmt.readings(tmp_path, uid), events(record)[:2], ["cam"])


KEYS = {
    "det": {"dtype": "number", "shape": [], "source": "d"},
    "cam": {"dtype": "array", "dtype_numpy": "<u2", "shape": [2, 2], "source": "c"},
}


def test_a_bad_reading_costs_only_itself_and_the_writer_goes_on(tmp_path, fmt):
    rows = [{"det": float(i), "cam": np.full((3, 2) if i == 3 else (2, 2), i, "<u2")} for i in range(1, 6)]
    rows[3]["det"] = "overrange"  # a string where numbers are declared
    docs = composed_run(KEYS, rows)
    writer = fmt.writer(tmp_path, file_prefix="bad")
    for name, doc in docs:
        writer(name, doc)  # nothing raised
    writer.close()
    info = fmt.info(tmp_path, "bad")
    assert info.status == "partial" and len(info.quarantined) == 2
    evs = events(docs)
    readings = fmt.readings(tmp_path, "bad")
    whole = [r for r in readings.rows if r.seq_num not in (3, 4)]
    assert_holds(
        Readings(whole, readings.in_event_order),
        [e for e in evs if e["seq_num"] not in (3, 4)],
        ["det", "cam"],
    )
    # the other reading of each of those events is stored
    by_seq_num = {r.seq_num: r for r in readings.rows}
    assert by_seq_num[3].data["det"] == 3.0 and by_seq_num[4].data["cam"].tolist() == [[4, 4], [4, 4]]
    assert_quarantined(fmt, tmp_path, "bad", [(3, "cam", rows[2]["cam"]), (4, "det", "overrange")])


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


def test_external_data_without_a_handler_is_reported_once_and_kept_as_datum_ids(
    RE, record, tmp_path, fmt, caplog
):
    RE.subscribe(fmt.writer(tmp_path / "live"))  # no handler for ophyd.sim's NPY_SEQ
    (uid,) = RE(bp.count([img, det], 3))  # the scan goes on
    datum_ids = [e["data"]["img"] for e in events(record)]
    for directory in ("live", "exported"):
        if directory == "exported":
            caplog.clear()
            export(record, tmp_path / directory, format=fmt.name)
        warned = [r.getMessage() for r in caplog.records if "NPY_SEQ" in r.getMessage()]
        # named at the resource, before the first event, with what to do; once per key after that
        assert len(warned) == 2 and "resource" in warned[0] and "handler_registry={'NPY_SEQ'" in warned[0]
        info = fmt.info(tmp_path / directory, uid)
        assert info.status == "partial" and info.errors == []
        readings = fmt.readings(tmp_path / directory, uid)
        assert_holds(readings, events(record), ["det"])  # the other key of every event lands
        assert_quarantined(
            fmt, tmp_path / directory, uid, [(i + 1, "img", d) for i, d in enumerate(datum_ids)]
        )
    # exported again with the handler, the same documents store the frames
    export(record, tmp_path / "filled", format=fmt.name, handler_registry={"NPY_SEQ": NumpySeqHandler})
    assert fmt.info(tmp_path / "filled", uid).status == "success"


def test_external_data_without_a_handler_stops_the_scan_at_its_resource_with_on_error_raise(
    RE, tmp_path, fmt
):
    writer = fmt.writer(tmp_path, on_error="raise")
    RE.subscribe(writer)
    # raised at the next document after the resource; the scan's stop may surface the first
    # event's refusal instead, which names the spec the same way
    with pytest.raises(DocumentError, match=r"spec 'NPY_SEQ', which no handler reads"):
        RE(bp.count([img], 3))
    # closed here, not when collected during a later test (whose log would show its error); close
    # says the error again when the scan's stop said success (it surfaced at the stop)
    with contextlib.suppress(BlueskyZarrError):
        writer.close()


def test_a_datum_that_fails_to_load_costs_only_its_reading(RE, record, tmp_path, fmt):
    RE(bp.count([img, det], 3))
    missing = next(d for n, d in record if n == "datum")["datum_id"]  # its event refers to no datum
    docs = [(n, d) for n, d in record if not (n == "datum" and d["datum_id"] == missing)]
    export(docs, tmp_path, format=fmt.name, handler_registry={"NPY_SEQ": NumpySeqHandler})
    uid = record[0][1]["uid"]
    assert fmt.info(tmp_path, uid).status == "partial"
    assert fmt.readings(tmp_path, uid).seq_nums() == [1, 2, 3]
    assert_quarantined(fmt, tmp_path, uid, [(1, "img", missing)])
    (kept,) = fmt.readings(tmp_path, uid, "primary_quarantine").rows
    assert missing in kept.data["reason"] and "UnresolvableForeignKeyError" in kept.data["reason"]


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

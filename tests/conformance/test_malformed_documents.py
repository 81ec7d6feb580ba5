"""Every format: a malformed document costs only itself, its readings are kept, the message names
the run, the stream and the event, and the run's status says so; a repeated start document or a
data key named like the store's own arrays loses nothing (hypothesis streams included)."""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bluesky import plans as bp
from documents import as_pages, composed_run, events, run_documents, runs
from formats import assert_holds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ophyd.sim import SynAxis, SynSignal

from bluesky_zarr import DocumentError, StoreExistsError, export

SCALAR = {"det": {"dtype": "number", "shape": [], "source": "d"}}
N = 200  # enough events that the writer thread takes them in batches

EVENT_FAULTS: dict[str, tuple[Any, str]] = {
    "no seq_num": (lambda e: e.pop("seq_num"), "has no 'seq_num'"),
    "no time": (lambda e: e.pop("time"), "has no 'time'"),
    "text time": (lambda e: e.update(time="noon"), "has 'time' 'noon', not a number"),
    "no data": (lambda e: e.pop("data"), "has no 'data'"),
}


def scalar_run(n: int = N) -> list[tuple[str, Any]]:
    return composed_run(SCALAR, [{"det": float(i)} for i in range(1, n + 1)])


def write(fmt, directory, docs, **options) -> list[BaseException]:
    """Feed every document to a new writer; the errors raised in the caller, in order."""
    writer = fmt.writer(directory, file_prefix="run", **options)
    raised = []
    for name, doc in docs:
        try:
            writer(name, doc)
        except Exception as err:
            raised.append(err)
    try:
        writer.close()
    except Exception as err:
        raised.append(err)
    return raised


def quarantined_rows(fmt, directory) -> list[tuple[int, str, Any, str]]:
    rows = fmt.readings(directory, "run", "primary_quarantine").rows
    return [(r.seq_num, r.data["data_key"], json.loads(r.data["value"]), r.data["reason"]) for r in rows]


@pytest.mark.parametrize("fault", EVENT_FAULTS)
def test_a_malformed_event_costs_only_itself_and_its_reading_is_kept(tmp_path, fmt, fault, caplog):
    docs = scalar_run()
    broken = docs[2 + 99][1]  # seq_num 100
    breaks, why = EVENT_FAULTS[fault]
    breaks(broken)
    assert write(fmt, tmp_path, docs) == []  # the scan goes on
    info = fmt.info(tmp_path, "run")
    assert info.status == "partial", info
    assert info.quarantined == [
        f"stream 'primary': 1 document(s) could not be written (the event {why}); their readings are in "
        "stream 'primary_quarantine'"
    ]
    warned = [
        r.getMessage() for r in caplog.records if why in r.getMessage() and r.levelno == logging.WARNING
    ]
    uid = docs[0][1]["uid"]
    assert warned and uid in warned[0] and "stream 'primary'" in warned[0]
    assert "never reached the writer" not in caplog.text  # a refused event is no gap
    assert_holds(fmt.readings(tmp_path, "run"), [e for e in events(docs) if e is not broken], ["det"])
    ((seq_num, key, value, reason),) = quarantined_rows(fmt, tmp_path)
    assert why in reason
    if fault == "no data":
        assert (key, value) == ("", None)  # no reading to keep; the row says the event came
    else:
        assert (key, value) == ("det", 100.0)
        assert seq_num == (0 if fault == "no seq_num" else 100)


PAGE_FAULTS: dict[str, tuple[Any, str]] = {
    "no data": (lambda p: p.pop("data"), "has no 'data'"),
    "short data": (lambda p: p["data"]["det"].pop(), "has not one reading of data key 'det' per seq_num"),
    "no time": (lambda p: p.pop("time"), "has no 'time' list of numbers, one per seq_num"),
}


@pytest.mark.parametrize("fault", PAGE_FAULTS)
def test_a_malformed_event_page_costs_only_itself(tmp_path, fmt, fault):
    docs = list(as_pages(scalar_run(40), 4))
    broken = docs[2 + 3][1]  # seq_nums 13 to 16
    breaks, why = PAGE_FAULTS[fault]
    breaks(broken)
    assert write(fmt, tmp_path, docs) == []
    info = fmt.info(tmp_path, "run")
    assert info.status == "partial"
    assert len(info.quarantined) == 1 and why in info.quarantined[0]
    kept = [e for e in events(scalar_run(40)) if not 13 <= e["seq_num"] <= 16]
    readings = fmt.readings(tmp_path, "run")
    assert readings.seq_nums() == [e["seq_num"] for e in kept]
    quarantine = quarantined_rows(fmt, tmp_path)
    assert [row[1] for row in quarantine] == ([""] if fault == "no data" else ["det"])


def test_with_on_error_raise_a_malformed_event_stops_the_scan_naming_it(tmp_path, fmt):
    docs = scalar_run(10)
    docs[2 + 4][1].pop("time")  # seq_num 5
    raised = write(fmt, tmp_path, docs, on_error="raise")
    assert raised and isinstance(raised[0], DocumentError)
    uid = docs[0][1]["uid"]
    message = str(raised[0])
    assert uid in message and "stream 'primary'" in message and "seq_num 5 has no 'time'" in message
    info = fmt.info(tmp_path, "run")
    assert info.status == "fail" and any("seq_num 5 has no 'time'" in e for e in info.errors)


def two_stream_run() -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """A run with a ``primary`` and a ``baseline`` stream, three events each."""
    import event_model

    run = event_model.compose_run()
    primary = run.compose_descriptor(name="primary", data_keys=SCALAR)
    baseline = run.compose_descriptor(name="baseline", data_keys=SCALAR)
    docs: list[tuple[str, Any]] = [("start", run.start_doc), ("descriptor", primary.descriptor_doc),
                                   ("descriptor", baseline.descriptor_doc)]  # fmt: skip
    for i in range(1, 4):
        for desc in (primary, baseline):
            docs.append(
                ("event", desc.compose_event(data={"det": float(i)}, timestamps={"det": 0.0}, seq_num=i))
            )
    docs.append(("stop", run.compose_stop()))
    return docs, primary.descriptor_doc


def test_a_descriptor_without_uid_is_named_and_the_run_is_not_reported_whole(tmp_path, fmt, caplog):
    docs, primary = two_stream_run()
    del primary["uid"]
    raised = write(fmt, tmp_path, docs)
    uid = docs[0][1]["uid"]
    assert raised and isinstance(raised[0], DocumentError)
    assert uid in str(raised[0]) and "descriptor of stream 'primary' has no 'uid'" in str(raised[0])
    assert "start document this writer never received" not in caplog.text  # not taken for another run
    info = fmt.info(tmp_path, "run")
    assert info.status == "partial"
    assert any("descriptor of stream 'primary'" in e for e in info.errors)
    assert any("3 event(s) named a descriptor the run never declared" in e for e in info.errors)
    assert fmt.readings(tmp_path, "run", "baseline").seq_nums() == [1, 2, 3]


@pytest.mark.parametrize("document", ["descriptor", "stop"])
def test_a_document_without_run_start_is_the_one_open_runs(tmp_path, fmt, document):
    docs, primary = two_stream_run()
    if document == "descriptor":
        del primary["run_start"]
    else:
        del docs[-1][1]["run_start"]
    assert write(fmt, tmp_path, docs) == []
    assert fmt.info(tmp_path, "run").status == "success"
    assert fmt.readings(tmp_path, "run").seq_nums() == [1, 2, 3]


@pytest.mark.parametrize("where", [3, 50])
def test_a_repeated_start_document_loses_nothing(tmp_path, fmt, where, caplog):
    docs = scalar_run(100)
    docs.insert(where, ("start", copy.deepcopy(docs[0][1])))
    assert write(fmt, tmp_path, docs) == []
    assert "came a second time" in caplog.text and "nothing was written" not in caplog.text
    assert fmt.info(tmp_path, "run").status == "success"
    assert_holds(fmt.readings(tmp_path, "run"), events(docs), ["det"])


def test_a_run_sent_twice_is_written_once_and_the_copy_refused_clearly(tmp_path, fmt):
    docs = scalar_run(10)
    raised = write(fmt, tmp_path, docs + copy.deepcopy(docs))
    assert len(raised) == 1 and isinstance(raised[0], StoreExistsError)
    assert "came again after its stop" in str(raised[0]) and "this writer wrote the run already" in str(
        raised[0]
    )
    assert fmt.info(tmp_path, "run").status == "success"
    assert_holds(fmt.readings(tmp_path, "run"), events(docs), ["det"])


@pytest.mark.parametrize("key", ["overflow", "written", "time", "seq_num"])
@pytest.mark.parametrize("plan", ["grid_scan", "count"])
def test_a_data_key_named_like_the_stores_own_arrays_is_kept(RE, record, tmp_path, fmt, key, plan):
    """On a grid, with events past its end (in the overflow group of Zarr and HDF5), and along time."""
    det = SynSignal(name=key, func=lambda: float(np.random.default_rng().random()))
    motor = SynAxis(name="motor")
    RE.subscribe(fmt.writer(tmp_path))
    if plan == "grid_scan":  # a grid of 2 points for 3 events: the last is off the grid
        RE(bp.grid_scan([det], motor, 0, 1, 3, md={"shape": [2]}))
    else:
        RE(bp.count([det], 4))
    uid = record[0][1]["uid"]
    assert fmt.info(tmp_path, uid).status == "success"
    assert_holds(fmt.readings(tmp_path, uid), events(record), [key])


BREAK_ANY_PAGE: dict[str, tuple[Any, str]] = {
    "no data": (lambda p: p.pop("data"), "has no 'data'"),
    "short data": (lambda p: next(iter(p["data"].values())).pop(), "has not one reading of data key"),
    "no time": (lambda p: p.pop("time"), "has no 'time' list"),
    "text seq_num": (lambda p: p["seq_num"].__setitem__(0, "1"), "has no 'seq_num' list of integers"),
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=runs(), seed=st.integers(0, 2**32 - 1), broken=st.sets(st.integers(0, 8)),
    fault=st.sampled_from(sorted(BREAK_ANY_PAGE)),
)  # fmt: skip
def test_any_stream_with_malformed_pages_keeps_every_other_event(fmt, spec, seed, broken, fault):
    docs, evs = run_documents(spec, np.random.default_rng(seed))
    pages = [i for i, (name, _) in enumerate(docs) if name == "event_page"]
    breaks, why = BREAK_ANY_PAGE[fault]
    lost: set[int] = set()
    for i in {pages[b] for b in broken if b < len(pages)}:
        page = copy.deepcopy(docs[i][1])
        lost.update(page["seq_num"])
        breaks(page)
        docs[i] = ("event_page", page)
    with tempfile.TemporaryDirectory() as tmp:
        export(docs, tmp, format=fmt.name, file_prefix="run")  # nothing raised
        info = fmt.info(Path(tmp), "run")
        assert info.status == ("partial" if lost else "success"), info
        if lost:
            assert len(info.quarantined) == 1 and why in info.quarantined[0], info.quarantined
        kept = [e for e in evs if e["seq_num"] not in lost]
        assert_holds(fmt.readings(Path(tmp), "run"), kept, list(spec["keys"]))


def test_an_event_without_a_descriptor_is_named_and_the_rest_of_the_run_is_kept(tmp_path, fmt, caplog):
    docs = scalar_run()
    broken = docs[2 + 9][1]  # seq_num 10
    expected = [e for e in events(docs) if e is not broken]
    del broken["descriptor"]
    assert write(fmt, tmp_path, docs) == []  # the scan goes on
    info = fmt.info(tmp_path, "run")
    uid = docs[0][1]["uid"]
    said = (
        f"run {uid}: the event with seq_num 10 has no 'descriptor', so it belongs to no stream of the run: "
        "it was not written"
    )
    assert info.status == "partial" and said in info.errors, info
    assert said in caplog.text and "never received" not in caplog.text and "never reached" not in caplog.text
    assert_holds(fmt.readings(tmp_path, "run"), expected, ["det"])

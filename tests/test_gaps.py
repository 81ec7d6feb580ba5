"""Events lost before they reach the writer (bluesky's 0MQ publisher drops them for a slow
subscriber): a gap in a stream's seq_num is warned and recorded as the run's ``gaps``, once, in the
router, for every format; a seq_num taken again (a resumed scan redoes points) is no gap."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import xarray as xr
from bluesky import RunEngine
from bluesky import plans as bp
from ophyd.sim import det

from bluesky_zarr import Writer


def _documents(n: int) -> list[tuple[str, dict]]:
    record: list[tuple[str, dict]] = []
    RE = RunEngine({})
    RE.subscribe(lambda name, doc: record.append((name, doc)))
    RE(bp.count([det], n))
    return record


def _write(tmp_path, documents) -> str:
    with Writer(tmp_path, "zarr", "parquet") as writer:
        for name, doc in documents:
            writer(name, doc)
    return next(d["uid"] for n, d in documents if n == "start")


def test_events_missing_at_the_end_are_found_from_the_stop_documents_count(tmp_path, caplog):
    documents = [(n, d) for n, d in _documents(5) if not (n == "event" and d["seq_num"] >= 4)]
    uid = _write(tmp_path, documents)
    gaps = {"primary": [[4, 5]]}
    assert json.loads(xr.open_zarr(tmp_path / f"{uid}.zarr").attrs["gaps"]) == gaps
    metadata = pq.read_schema(tmp_path / uid / "primary.parquet").metadata
    assert json.loads(metadata[b"gaps"]) == gaps and json.loads(metadata[b"status"]) == "partial"
    (warned,) = [r.getMessage() for r in caplog.records if "misses" in r.getMessage()]
    assert "'primary' misses 2 event(s), seq_num 4 to 5" in warned


def test_a_seq_num_taken_again_is_no_gap_and_a_whole_run_has_none(tmp_path, caplog):
    documents = _documents(4)
    events = [(n, d) for n, d in documents if n == "event"]
    redone = documents[:-1] + events[2:] + documents[-1:]  # points 3 and 4 redone, as after a pause
    uid = _write(tmp_path, redone)
    attrs = xr.open_zarr(tmp_path / f"{uid}.zarr").attrs
    assert "gaps" not in attrs and attrs["status"] == "success"
    assert not [r for r in caplog.records if "misses" in r.getMessage()]

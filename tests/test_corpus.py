"""Every recording of the corpus (``tests/corpus.py``) replayed through every format, read back.

Read back with stock readers (the adapters of ``tests/formats.py``).

The corpus holds real document streams: bluesky's own plans (count, scan, rel/list/log scans, grid
scans snaking or not, list grids, spirals, scan_nd, adaptive scans, tune_centroid), run by a real
RunEngine on ophyd.sim devices, with a baseline, a monitor, and pauses that make bluesky rewind,
and ophyd-async's simulated stage, point detector and blob detector (frames in its HDF5 file).
Each lands with status ``success`` and every event of every stream, as events and as event pages.

To add a recording: add an entry to ``corpus.RECORDINGS``. If it does not land today, add it to
``XFAIL`` below with the exact failure; the mark is strict, so it is seen the day it passes.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from corpus import DEVICE_RECORDINGS, RECORDINGS, record, record_devices
from documents import as_pages, events, expected_indices
from formats import FORMATS, OutputFormat, assert_holds
from ophyd.sim import NumpySeqHandler
from stock import assert_exports_to_netcdf

from bluesky_zarr import export

XFAIL: dict[str, str] = {}
"""recording name (or ``name/format``) -> why it does not land yet"""


HANDLERS = {"NPY_SEQ": NumpySeqHandler}
"""ophyd.sim's ``img`` writes its frames through a registry (Resource/Datum of spec NPY_SEQ)."""


@pytest.fixture(scope="session")
def recordings() -> dict[str, list[tuple[str, Any]]]:
    return {}


def _cases() -> list[Any]:
    cases = []
    for name in [*RECORDINGS, *DEVICE_RECORDINGS]:
        for fmt in FORMATS:
            for pages in (False, True):
                marks = []
                reason = XFAIL.get(name) or XFAIL.get(f"{name}/{fmt.name}")
                if reason:
                    marks.append(pytest.mark.xfail(strict=True, reason=reason))
                cases.append(
                    pytest.param(
                        name,
                        fmt,
                        pages,
                        marks=marks,
                        id=f"{name}-{fmt.name}-{'pages' if pages else 'events'}",
                    )
                )
    return cases


@pytest.mark.parametrize(("name", "fmt", "pages"), _cases())
def test_recording_lands_with_every_event(
    recordings: dict[str, list[tuple[str, Any]]],
    tmp_path: Any,
    tmp_path_factory: Any,
    name: str,
    fmt: OutputFormat,
    pages: bool,
) -> None:
    if name not in recordings:
        recordings[name] = (
            record_devices(name, tmp_path_factory.mktemp(name)) if name in DEVICE_RECORDINGS else record(name)
        )
    docs = recordings[name]
    start = docs[0][1]
    export(as_pages(docs, 3) if pages else docs, tmp_path, format=fmt.name, handler_registry=HANDLERS)
    info = fmt.info(tmp_path, start["uid"])
    assert info.status == "success", (info.errors, info.quarantined)
    streams = {d["name"] for n, d in docs if n == "descriptor"}
    for stream in sorted(streams):
        evs = events(docs, stream)
        # external keys hold datum ids in the documents, the frames in the output: not compared
        external = {
            k
            for n, d in docs
            if n == "descriptor" and d["name"] == stream
            for k, v in d["data_keys"].items()
            if "external" in v
        }
        keys = sorted(set(evs[0]["data"]) - external) if evs else []
        readings = fmt.readings(tmp_path, start["uid"], stream)
        assert_holds(readings, evs, keys)
        shape = start.get("shape")
        if stream == "primary" and shape and len(evs) <= math.prod(shape):  # each on its grid point
            snake = [False, *(start.get("snaking") or [False] * len(shape))[1:]]
            index = {r.seq_num: r.index for r in readings.rows}
            assert [index[e["seq_num"]] for e in evs] == expected_indices(list(shape), snake)[: len(evs)]
    if fmt.name == "zarr" and not pages:  # a collaborator's NetCDF, from every recording
        assert_exports_to_netcdf(fmt.output(tmp_path, start["uid"]), tmp_path)

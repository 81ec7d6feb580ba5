"""Metadata always encodes as strict JSON; names made from metadata stay inside the directory."""

from __future__ import annotations

import datetime
import json
import logging
import math
import re
import unicodedata

import duckdb
import numpy as np
import pytest
from bluesky import plans as bp
from hypothesis import given
from hypothesis import strategies as st
from ophyd.sim import det
from stock import root_attrs

from bluesky_zarr import ConfigurationError, StoreExistsError, UnsafePathError, ZarrWriter, to_json
from bluesky_zarr._encoding import MAX_DEPTH
from bluesky_zarr._naming import render_file_prefix

odd_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary()
    | st.datetimes() | st.complex_numbers()
    | st.builds(np.float32, st.floats(width=32)) | st.builds(np.int16, st.integers(-100, 100))
    | st.builds(lambda xs: np.asarray(xs), st.lists(st.floats(), max_size=4)),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.frozensets(st.integers(), max_size=3)
    | st.dictionaries(st.text() | st.integers(), inner, max_size=3),
    max_leaves=10,
)  # fmt: skip


@given(odd_values)
def test_every_value_encodes_as_strict_json(value):
    json.dumps(to_json(value), allow_nan=False)


def test_the_documented_encodings():
    assert to_json({"nan": math.nan, "inf": -math.inf}) == {"nan": "NaN", "inf": "-Infinity"}
    assert to_json(np.arange(3, dtype="u1")) == [0, 1, 2]
    assert to_json(np.float32(1.5)) == 1.5 and isinstance(to_json(np.int64(3)), int)
    assert to_json(b"\x00\xff") == {"base64": "AP8="}
    assert to_json(datetime.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05"
    assert to_json((1, {3, 2})) == [1, [2, 3]]
    assert to_json({1: "a"}) == {"1": "a"}


def test_odd_start_metadata_is_kept_and_later_writes_go_on(RE, tmp_path):
    RE.subscribe(ZarrWriter(tmp_path))
    md = {
        "sample": {"thickness": np.float64(0.5), "grid": np.eye(2), "bad": math.nan},
        "when": datetime.datetime(2026, 11, 21, 9, 0),
        "raw": b"bytes",
        "tags": {"b", "a"},
        "pair": (1, 2),
    }
    (uid,) = RE(bp.count([det], 3), **md)
    attrs = root_attrs(tmp_path / f"{uid}.zarr")
    assert attrs["start"]["sample"] == {"thickness": 0.5, "grid": [[1.0, 0.0], [0.0, 1.0]], "bad": "NaN"}
    assert attrs["start"]["when"] == "2026-11-21T09:00:00" and attrs["start"]["tags"] == ["a", "b"]
    assert attrs["status"] == "success"


START = {
    "uid": "abc-123",
    "scan_id": 7,
    "sample": "quartz",
    "evil": "../../etc",
    "slash": "a/b",
    "dots": "..",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{start[uid]}", "abc-123"),
        ("{start[scan_id]}-", "7-"),
        ("{start[sample]}/{start[scan_id]:04d}", "quartz/0007"),
    ],
)
def test_file_prefix_is_filled_from_the_start_document(template, expected):
    assert render_file_prefix(template, START) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{start[evil]}", "path separator"),
        ("{start[slash]}", "path separator"),
        ("{start[dots]}", "path separator or is '.'/'..'"),
        ("../{start[uid]}", "leaves the target directory"),
        ("/abs/{start[uid]}", "leaves the target directory"),
        ("{start[missing]}", "cannot be filled from the start document of run abc-123"),
        ("", "empty"),
    ],
)
def test_file_prefix_that_would_leave_the_directory_is_refused(template, message):
    with pytest.raises(UnsafePathError, match=message):
        render_file_prefix(template, START)


def test_a_missing_file_prefix_field_is_named():
    with pytest.raises(UnsafePathError, match=r"it has no 'proposal' \(for \{start\[proposal\]\}\)"):
        render_file_prefix("{start[proposal]}-{start[uid]}", START)


def test_unsafe_metadata_writes_nothing_anywhere(RE, tmp_path):
    target = tmp_path / "data"
    RE.subscribe(ZarrWriter(target, file_prefix="{start[sample]}"))
    with pytest.raises(UnsafePathError, match="sample"):
        RE(bp.count([det], 2), sample="../outside")
    assert not (tmp_path / "outside.zarr").exists()
    assert not target.exists() or not any(target.iterdir())
    (uid,) = RE(bp.count([det], 1), sample="fine")  # the writer goes on with the next run
    assert root_attrs(target / "fine.zarr")["start"]["uid"] == uid


# --- input that stock readers or file systems do not take as it is (issue 15 item 12) -------------


def _nested(depth: int) -> dict[str, object]:
    doc: dict[str, object] = {}
    inner = doc
    for _ in range(depth):
        inner["x"] = {}
        inner = inner["x"]  # type: ignore[assignment]
    inner["leaf"] = 1
    return doc


def test_a_start_document_nested_500_deep_is_kept_and_the_run_succeeds(RE, tmp_path):
    documents: list[tuple[str, dict[str, object]]] = []
    (uid,) = RE(bp.count([det], 2), lambda name, doc: documents.append((name, doc)))
    documents[0] = ("start", {**documents[0][1], "deep": _nested(500)})  # more than a RunEngine copies
    with ZarrWriter(tmp_path) as writer:
        for name, doc in documents:
            writer(name, doc)
    attrs = root_attrs(tmp_path / f"{uid}.zarr")
    assert attrs["status"] == "success"
    inner = attrs["start"]["deep"]
    for _ in range(MAX_DEPTH - 2):  # the start document is level 0, "deep" level 1
        inner = inner["x"]
    rest = json.loads(inner["x"])  # below MAX_DEPTH: the rest as one JSON text
    for _ in range(500 - MAX_DEPTH + 1):
        rest = rest["x"]
    assert rest == {"leaf": 1}


def test_a_self_referencing_value_encodes():
    value: dict[str, object] = {"a": 1}
    value["self"] = value
    json.loads(json.dumps(to_json(value), allow_nan=False))


def test_a_lone_surrogate_becomes_the_replacement_character_and_duckdb_reads_the_metadata(RE, tmp_path):
    RE.subscribe(ZarrWriter(tmp_path))
    (uid,) = RE(bp.count([det], 1), sample="quartz\ud800", pair="\ud83d\ude00")
    path = tmp_path / f"{uid}.zarr" / "zarr.json"
    found = duckdb.sql(  # the start document is an attribute of JSON text (NetCDF holds only text)
        "select json_extract_string(attributes.start, '$.sample'), "
        f"json_extract_string(attributes.start, '$.pair') from read_json('{path}')"
    )
    assert found.fetchall() == [("quartz\ufffd", "\U0001f600")]  # a valid pair is its character


def test_keys_that_read_the_same_as_text_are_both_kept():
    assert to_json({1: "int", "1": "text", 2: "two"}) == {"1 (int)": "int", "1": "text", "2": "two"}
    assert to_json({("a",): 1, "('a',)": 2}) == {"('a',) (tuple)": 1, "('a',)": 2}


def test_one_name_typed_two_ways_names_one_output(RE, tmp_path):
    RE.subscribe(ZarrWriter(tmp_path, file_prefix="{start[sample]}"))
    RE(bp.count([det], 1), sample=unicodedata.normalize("NFC", "café"))
    with pytest.raises(StoreExistsError, match="exists already"):
        RE(bp.count([det], 1), sample=unicodedata.normalize("NFD", "café"))
    assert [p.name for p in tmp_path.iterdir()] == [unicodedata.normalize("NFC", "café.zarr")]


@pytest.mark.parametrize(
    ("value", "named"),
    [("a\nb", "U+000A"), ("invoice\u202etxt.exe", "U+202E (RIGHT-TO-LEFT OVERRIDE)"), ("a\u200bb", "U+200B")],
)
def test_a_character_no_file_name_should_hold_is_refused_by_name_at_start(RE, tmp_path, value, named):
    RE.subscribe(ZarrWriter(tmp_path, file_prefix="{start[sample]}"))
    with pytest.raises(UnsafePathError, match=re.escape(named) + ".*nothing was written"):
        RE(bp.count([det], 1), sample=value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("template", ["run\0{start[uid]}", "{start[uid]}\n", "\u202e{start[uid]}"])
def test_a_template_holding_such_a_character_is_refused_when_the_writer_is_made(tmp_path, template):
    with pytest.raises(ConfigurationError, match="which a file name must not hold"):
        ZarrWriter(tmp_path, file_prefix=template)


def test_a_large_start_document_is_warned_of_by_key(RE, tmp_path, caplog):
    RE.subscribe(ZarrWriter(tmp_path))
    with caplog.at_level(logging.WARNING, logger="bluesky_zarr"):
        (uid,) = RE(bp.count([det], 1), notes="x" * 3_000_000)
    assert f"run {uid}: its start document holds 3.0 MB of JSON (3.0 MB of it in 'notes')" in caplog.text
    assert root_attrs(tmp_path / f"{uid}.zarr")["status"] == "success"

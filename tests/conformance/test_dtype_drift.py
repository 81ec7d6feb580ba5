"""Every format: a reading that does not fit its declared dtype widens its data key, never stops a scan.

ophyd declares a signal's dtype from its first reading: a motor that starts at ``0`` is ``int64``,
and its next setpoint ``0.5`` does not fit. The key is stored as the smallest dtype that holds
both, every value exact, and the output records what happened.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from documents import composed_run, events
from ophyd.sim import det, det4, motor1, motor2, motor3
from stock import open_hdf5_stream, variables_by_data_key

from bluesky_zarr import export


def column(fmt, directory, prefix, key, stream="primary"):
    """(seq_num, reading) of every event the output holds, in seq_num order."""
    rows = fmt.readings(directory, prefix, stream).rows
    return sorted((r.seq_num, r.data[key]) for r in rows)


def widening(fmt, directory, prefix, key, stream="primary"):
    """What the output records about a widened key (Zarr, HDF5: array attrs; tables: field metadata)."""
    if fmt.name == "hdf5":
        ds = open_hdf5_stream(fmt.output(directory, prefix), stream)
        name = variables_by_data_key(ds)[key]
        return ds[name].dtype, ds[name].attrs.get("dtype_widened")
    if fmt.name == "zarr":
        import xarray as xr

        ds = xr.open_zarr(fmt.output(directory, prefix), group=stream, consolidated=False)
        name = variables_by_data_key(ds)[key]
        widened = ds[name].attrs.get("dtype_widened")
        return ds[name].dtype, json.loads(widened) if widened is not None else None
    import pyarrow.parquet as pq
    from tables import read_any

    if fmt.name == "arrow":  # the widened key continues in a new file: its last one has the schema
        schema = read_any(fmt.pieces(directory, prefix, stream)[-1]).arrow.schema
    else:
        schema = pq.read_schema(fmt.stream_file(directory, prefix, stream))
    name = json.loads(schema.metadata[b"columns"])[key]
    field = schema.field(name)
    widened = field.metadata.get(b"dtype_widened") if field.metadata else None
    value_type = field.type.value_type if isinstance(field.type, pa.FixedShapeTensorType) else field.type
    return np.dtype(value_type.to_pandas_dtype()), json.loads(widened) if widened else None


def test_an_integer_start_position_widens_the_motor_and_the_scan_lands(RE, record, tmp_path, fmt):
    motor1.set(0).wait()  # ophyd declares motor1_setpoint int64 from this first reading
    RE.subscribe(fmt.writer(tmp_path / "live"))
    (uid,) = RE(bp.list_grid_scan([det4], motor1, [0, 0.5, 3], motor2, [1, 2]))
    assert record[1][1]["data_keys"]["motor1_setpoint"]["dtype"] == "integer"
    for directory in (tmp_path / "live", tmp_path / "exported"):
        if directory.name == "exported":  # a saved run like this one exports as it is
            export(record, directory, format=fmt.name)
        info = fmt.info(directory, uid)
        assert info.status == "success" and info.errors == [] and info.quarantined == []
        setpoints = column(fmt, directory, uid, "motor1_setpoint")
        assert [s for s, _ in setpoints] == [1, 2, 3, 4, 5, 6]  # every point written
        assert [float(v) for _, v in setpoints] == [0, 0, 0.5, 0.5, 3, 3]
        dtype, record_of_it = widening(fmt, directory, uid, "motor1_setpoint")
        assert dtype == np.float64
        assert record_of_it == {"declared": "int64", "stored": "float64", "first_seq_num": 3}
        assert [v for _, v in column(fmt, directory, uid, "det4")] == [
            e["data"]["det4"] for e in events(record)
        ]


def test_a_baseline_motor_that_moves_off_its_integer_start_widens_too(RE, record, tmp_path, fmt):
    motor3.set(0).wait()
    RE.subscribe(fmt.writer(tmp_path))
    (uid,) = RE(bpp.baseline_wrapper(bp.scan([det], motor3, 0, 0.5, 2), [motor3]))
    assert fmt.info(tmp_path, uid).status == "success"
    assert [float(v) for _, v in column(fmt, tmp_path, uid, "motor3", "baseline")] == [0.0, 0.5]
    assert widening(fmt, tmp_path, uid, "motor3", "baseline")[0] == np.float64


KEYS = {
    "count": {"dtype": "integer", "dtype_numpy": "<i4", "shape": [], "source": "c"},
    "flag": {"dtype": "boolean", "shape": [], "source": "f"},
    "frame": {"dtype": "array", "dtype_numpy": "|u1", "shape": [3, 2], "source": "cam"},
}


@pytest.mark.parametrize("page", [False, True], ids=["events", "pages"])
def test_each_key_widens_to_the_smallest_dtype_that_holds_every_reading(tmp_path, fmt, page):
    rows = [{"count": i, "flag": True, "frame": np.full((3, 2), i, "|u1")} for i in range(1, 5)]
    rows[1]["count"] = 2**40  # int32 -> int64
    rows[2]["flag"] = 2  # bool -> uint8
    rows[3]["frame"] = np.full((3, 2), 300, "<u2")  # uint8 -> uint16
    docs = composed_run(KEYS, rows)
    if page:
        from documents import as_pages

        docs = list(as_pages(docs, 2))
    export(docs, tmp_path, "drift", format=fmt.name)
    assert fmt.info(tmp_path, "drift").status == "success"
    for key, stored in [("count", "int64"), ("flag", "uint8"), ("frame", "uint16")]:
        assert widening(fmt, tmp_path, "drift", key)[0] == np.dtype(stored), key
        got = [np.asarray(v).tolist() for _, v in column(fmt, tmp_path, "drift", key)]
        assert got == [np.asarray(r[key]).tolist() for r in rows], key

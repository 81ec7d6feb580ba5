"""External data (legacy Resource/Datum) is filled in the writer thread through event_model.Filler."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import plans as bp
from ophyd.sim import NumpySeqHandler, img
from stock import open_stream

from bluesky_zarr import DocumentError, ZarrWriter, export


def test_resource_datum_frames_are_filled_and_stored(RE, record, tmp_path):
    RE.subscribe(ZarrWriter(tmp_path / "live", handler_registry={"NPY_SEQ": NumpySeqHandler}))
    (uid,) = RE(bp.count([img], 3))
    ds = open_stream(tmp_path / "live" / f"{uid}.zarr")
    assert ds.img.shape == (3, 10, 10)
    # the frames are what the handler reads from the detector's own files
    resource = next(d for n, d in record if n == "resource")
    handler = NumpySeqHandler(
        f"{resource['root']}/{resource['resource_path']}", **resource["resource_kwargs"]
    )
    datums = [d for n, d in record if n == "datum"]
    expected = np.stack([handler(**d["datum_kwargs"]) for d in datums])
    np.testing.assert_array_equal(ds.img.values, expected)


def test_external_data_without_a_handler_is_a_clear_error(RE, record, tmp_path):
    RE(bp.count([img], 1))
    with pytest.raises(DocumentError, match=r"'img' is external .*handler_registry"):
        export(record, tmp_path)

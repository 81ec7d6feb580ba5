"""Array->array filters through the writer on real scans: transpose (given over a reading's own axes)
and bitround (floats, lossy within its bound), read back with xarray and, where it reads them,
tensorstore."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from bluesky import plans as bp
from ophyd.sim import motor1, motor2
from stand_ins import FrameCounter
from stock import assert_tensorstore_agrees, open_stream, tensorstore_read

from bluesky_zarr import ZarrWriter, inspect_run
from bluesky_zarr.codecs import CodecError

FRAME = (6, 4)


class PatternCamera(FrameCounter):
    """Frames that differ along each axis and from reading to reading: a wrong axis order shows."""

    def _frame(self) -> np.ndarray:
        n = next(self._counter)
        if np.dtype(self.frame_dtype).kind == "f":  # a normalized image: 0..1, full float32 mantissas
            return np.random.default_rng(n).random(self.frame_shape).astype(self.frame_dtype)
        return (n * 100 + np.arange(np.prod(self.frame_shape)).reshape(self.frame_shape)).astype(
            self.frame_dtype
        )


def expected(cam: PatternCamera, points: int) -> np.ndarray:
    """The frames ``cam`` gave at the scan's points (its first reading is taken when it is made)."""
    again = PatternCamera(shape=cam.frame_shape, dtype=cam.frame_dtype)
    return np.stack([again._frame() for _ in range(points)])


def grid(RE: Any, tmp_path: Path, cam: PatternCamera, **options: Any) -> Path:
    RE.subscribe(ZarrWriter(tmp_path, **options))
    (uid,) = RE(bp.grid_scan([cam], motor1, -1, 1, 3, motor2, 0, 3, 2))
    return tmp_path / f"{uid}.zarr"


def codecs_of(store: Path, array: str, group: str = "primary") -> list[dict[str, Any]]:
    meta = json.loads((store / group / array / "zarr.json").read_text())
    codecs = meta["codecs"]
    if codecs[0]["name"] == "sharding_indexed":
        codecs = codecs[0]["configuration"]["codecs"]
    return list(codecs)


TRANSPOSE = {"name": "transpose", "configuration": {"order": [1, 0]}}


# --- transpose ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shards", [None, "auto"])
def test_a_transpose_over_the_frame_keeps_the_grid_axes_in_place(RE, tmp_path, shards):
    cam = PatternCamera(shape=FRAME)
    options: dict[str, Any] = {"codecs": {"cam": [TRANSPOSE, {"name": "zstd"}]}}
    if shards:
        options["shards"] = {"cam": shards}
    store = grid(RE, tmp_path, cam, **options)
    assert codecs_of(store, "cam")[0] == {"name": "transpose", "configuration": {"order": [0, 1, 3, 2]}}
    frames = expected(cam, 6).reshape(3, 2, *FRAME)
    ds = open_stream(store)
    assert ds["cam"].dims == ("motor1", "motor2", "y", "x")
    np.testing.assert_array_equal(ds["cam"].values, frames)
    np.testing.assert_array_equal(tensorstore_read(store, "primary", "cam"), frames)
    assert_tensorstore_agrees(store)


def test_a_transpose_on_a_1d_stream_and_its_preset_compressor(RE, tmp_path):
    """A plan without a grid: one leading event axis, kept in front; TransposeCodec objects too."""
    from zarr.codecs import TransposeCodec

    cam = PatternCamera(shape=FRAME)
    RE.subscribe(ZarrWriter(tmp_path, codecs={"cam": [TransposeCodec(order=(1, 0)), {"name": "blosc"}]}))
    (uid,) = RE(bp.count([cam], 5))
    store = tmp_path / f"{uid}.zarr"
    assert codecs_of(store, "cam")[0]["configuration"]["order"] == [0, 2, 1]
    np.testing.assert_array_equal(open_stream(store)["cam"].values, expected(cam, 5))
    np.testing.assert_array_equal(tensorstore_read(store, "primary", "cam"), expected(cam, 5))


def test_a_transpose_that_names_the_whole_array_is_refused_before_anything_is_written(RE, tmp_path):
    cam = PatternCamera(shape=FRAME)
    full = {"name": "transpose", "configuration": {"order": [0, 1, 3, 2]}}
    RE.subscribe(ZarrWriter(tmp_path, codecs={"cam": [full]}))
    with pytest.raises(CodecError, match=r"names 4 axes, but a reading has 2 \(y, x\).*scan's axes"):
        RE(bp.grid_scan([cam], motor1, -1, 1, 3, motor2, 0, 3, 2))
    (store,) = tmp_path.glob("*.zarr")
    assert not (store / "primary").exists()


# --- bitround -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "keepbits"),
    [
        ("bitround-8+blosc-zstd", 8),
        ("bitround-12+blosc-zstd+crc32c", 12),
        ([{"name": "numcodecs.bitround", "configuration": {"keepbits": 16}}, {"name": "zstd"}], 16),
    ],
)
def test_bitround_frames_read_back_within_their_bound(RE, tmp_path, choice, keepbits):
    cam = PatternCamera(shape=(16, 16), dtype="<f4")
    store = grid(RE, tmp_path, cam, codecs={"cam": choice})
    assert codecs_of(store, "cam")[0] == {
        "name": "numcodecs.bitround",
        "configuration": {"keepbits": keepbits},
    }
    frames = expected(cam, 6).reshape(3, 2, 16, 16)
    with warnings.catch_warnings():  # zarr-python says, as it reads, that numcodecs.* is not in the spec
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3")
        stored = open_stream(store)["cam"].values
    assert stored.dtype == np.float32
    # rounding to nearest with `keepbits` mantissa bits: relative error at most 2**-(keepbits + 1)
    np.testing.assert_array_less(np.abs(stored - frames), np.abs(frames) * 2.0 ** -(keepbits + 1) + 1e-45)
    assert not np.array_equal(stored, frames)  # it did round
    # the low bits are zero: a float32 keeps 23 mantissa bits, of which 23 - keepbits are dropped
    assert not (stored.view("<u4") & ((1 << (23 - keepbits)) - 1)).any()


def test_tensorstore_does_not_read_bitround(RE, tmp_path):
    """Documented: numcodecs.bitround is zarr-python's (numcodecs'), not tensorstore's."""
    cam = PatternCamera(shape=(16, 16), dtype="<f4")
    store = grid(RE, tmp_path, cam, codecs={"cam": "bitround-12+zstd"})
    with pytest.raises(ValueError, match="bitround"):
        tensorstore_read(store, "primary", "cam")
    # `bluesky-zarr inspect` says what the array holds
    assert inspect_run(store)["streams"]["primary"]["arrays"]["cam"]["codecs"] == ["bitround 12", "zstd 3"]


def test_bitround_on_float64_readings_and_through_xarray_open_datatree(RE, tmp_path):
    cam = PatternCamera(shape=(8, 8), dtype="<f8")
    store = grid(RE, tmp_path, cam, codecs={"cam": "bitround-40+blosc-lz4"})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3")
        tree = xr.open_datatree(store, engine="zarr", consolidated=False, zarr_format=3)
        stored = tree["primary"]["cam"].values
    frames = expected(cam, 6).reshape(3, 2, 8, 8)
    np.testing.assert_allclose(stored, frames, rtol=2.0**-41, atol=0)


@pytest.mark.parametrize(
    ("choice", "dtype", "message"),
    [
        ("bitround-24+zstd", "<f4", r"keepbits must be 0-23 for float32 .*not 24"),
        ("bitround-53+zstd", "<f8", r"keepbits must be 0-52 for float64 .*not 53"),
        ("bitround-8+zstd", "<u2", r"bitround rounds the mantissas of floats, and uint16 is not a float"),
        ([{"name": "numcodecs.bitround", "configuration": {"keepbits": 30}}], "<f4", "0-23 for float32"),
    ],
)
def test_bitround_that_does_not_fit_the_dtype_is_refused_at_the_start(RE, tmp_path, choice, dtype, message):
    cam = PatternCamera(shape=(4, 4), dtype=dtype)
    RE.subscribe(ZarrWriter(tmp_path, codecs={"cam": choice}))
    with pytest.raises(CodecError, match=message) as caught:
        RE(bp.count([cam], 2))
    assert "data key 'cam'" in str(caught.value)
    (store,) = tmp_path.glob("*.zarr")
    assert not (store / "primary").exists()


def test_filters_in_a_writer_process(RE, tmp_path):
    """worker="process": the writer process gets the choices pickled and resolves them itself."""
    cam = PatternCamera(shape=(16, 16), dtype="<f4")
    bitround = {"name": "numcodecs.bitround", "configuration": {"keepbits": 12}}
    writer = ZarrWriter(tmp_path, worker="process", codecs={"cam": [TRANSPOSE, bitround]})
    RE.subscribe(writer)
    (uid,) = RE(bp.count([cam], 3))
    writer.close()
    store = tmp_path / f"{uid}.zarr"
    assert [c["name"] for c in codecs_of(store, "cam")] == ["transpose", "numcodecs.bitround", "bytes"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3")
        stored = open_stream(store)["cam"].values
    np.testing.assert_allclose(stored, expected(cam, 3), rtol=2.0**-13, atol=0)

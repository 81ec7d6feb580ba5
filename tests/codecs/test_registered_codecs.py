"""Any codec registered with zarr-python in a data key's codec list: the writer runs zarr-python's own
codec object for codecs it does not encode itself, and stock readers decode the result."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from bluesky import plans as bp
from example_codecs import ROW_DELTA, XOR, RowDelta, Xor, register
from ophyd.sim import motor1, motor2
from stand_ins import FrameCounter
from stock import open_stream

from bluesky_zarr import ZarrWriter
from bluesky_zarr.codecs import CodecError, resolve_codecs

register()  # as a user's package does when imported (or through its "zarr.codecs" entry point)


class Ramp(FrameCounter):
    """Frames that rise along x and differ from reading to reading."""

    def _frame(self) -> np.ndarray:
        n = next(self._counter)
        return (n + 3 * np.arange(np.prod(self.frame_shape)).reshape(self.frame_shape)).astype(
            self.frame_dtype
        )


def frames(points: int, shape: tuple[int, int] = (6, 4)) -> np.ndarray:
    cam = Ramp(shape=shape)
    return np.stack([cam._frame() for _ in range(points)])


CHOICES: list[Any] = [
    [{"name": ROW_DELTA}, {"name": "zstd"}],
    [RowDelta(), {"name": "blosc"}, Xor(key=7)],
    [{"name": "transpose", "configuration": {"order": [1, 0]}}, {"name": ROW_DELTA}, {"name": XOR}],
]


@pytest.mark.parametrize("choice", CHOICES)
def test_a_chain_encodes_exactly_what_zarr_python_writes(choice: list[Any], tmp_path: Path) -> None:
    chain = resolve_codecs(choice, np.dtype("<u2"), where="t", reading_dims=("y", "x"), leading_ndim=1)
    data = frames(3)
    array = zarr.create_array(
        zarr.storage.LocalStore(tmp_path / "a.zarr"), shape=data.shape, chunks=(1, 6, 4), dtype="<u2",
        filters=chain.filters, serializer=chain.serializer, compressors=chain.compressors,
    )  # fmt: skip
    assert [c["name"] for c in array.metadata.to_dict()["codecs"]] == [c["name"] for c in chain.to_json()]
    array[...] = data
    for i in range(3):
        stored = (tmp_path / "a.zarr" / "c" / str(i) / "0" / "0").read_bytes()
        assert bytes(chain.encode(data[i : i + 1])) == stored
        np.testing.assert_array_equal(chain.decode(stored, (1, 6, 4), np.dtype("<u2")), data[i : i + 1])
    copy = pickle.loads(pickle.dumps(chain))  # a process worker gets its chains this way
    assert bytes(copy.encode(data[:1])) == bytes(chain.encode(data[:1]))


@pytest.mark.parametrize("choice", CHOICES)
def test_a_scan_with_registered_codecs_reads_back_with_xarray(RE, tmp_path: Path, choice: list[Any]) -> None:
    RE.subscribe(ZarrWriter(tmp_path, codecs={"cam": choice}))
    (uid,) = RE(bp.grid_scan([Ramp()], motor1, -1, 1, 3, motor2, 0, 3, 2))
    store = tmp_path / f"{uid}.zarr"
    np.testing.assert_array_equal(open_stream(store)["cam"].values, frames(6).reshape(3, 2, 6, 4))
    tree = xr.open_datatree(store, engine="zarr", consolidated=False, zarr_format=3)
    np.testing.assert_array_equal(tree["primary"]["cam"].values, frames(6).reshape(3, 2, 6, 4))


def test_numcodecs_codecs_zarr_python_registers_work_too(RE, tmp_path: Path) -> None:
    """numcodecs.delta (array->array, with a dtype of its own) and numcodecs.zlib (bytes->bytes)."""
    choice = [{"name": "numcodecs.delta", "configuration": {"dtype": "<u2"}}, {"name": "numcodecs.zlib"}]
    RE.subscribe(ZarrWriter(tmp_path, codecs={"cam": choice}))
    (uid,) = RE(bp.count([Ramp()], 4))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3")
        stored = open_stream(tmp_path / f"{uid}.zarr")["cam"].values
    np.testing.assert_array_equal(stored, frames(4))


def test_an_unregistered_codec_is_refused_with_how_to_register_it() -> None:
    with pytest.raises(CodecError) as caught:
        resolve_codecs([{"name": "mylab.sparse"}], np.dtype("<u2"), where="data key 'cam'")
    message = str(caught.value)
    assert message.startswith("data key 'cam': no zarr v3 codec named 'mylab.sparse' is registered")
    assert "zarr.registry.register_codec('mylab.sparse', YourCodecClass)" in message
    assert "entry point in the group 'zarr.codecs'" in message


def test_a_serializer_of_its_own_is_refused() -> None:
    from zarr.codecs import ShardingCodec

    with pytest.raises(CodecError, match="cannot encode with the serializer ShardingCodec"):
        resolve_codecs([ShardingCodec(chunk_shape=(2,))], np.dtype("<u2"), where="data key 'cam'")


def test_a_registered_codec_that_does_not_fit_the_dtype_is_refused_at_the_start(RE, tmp_path: Path) -> None:
    """zarr-python's own check of the codec against the dtype runs before anything is written."""
    choice = [{"name": "numcodecs.packbits"}]  # packbits takes booleans only
    RE.subscribe(ZarrWriter(tmp_path, codecs={"cam": choice}))
    with pytest.raises(CodecError, match=r"data key 'cam'.*does not fit uint16"):
        RE(bp.count([Ramp()], 1))

"""The Anscombe codec as a numcodecs filter for Zarr v2 arrays: its ``.zarray`` configuration passes
AnscombeCodec's through, counts round-trip within the bound (bytes in, bytes out, either byte
order), zarr-python and xarray read a v2 array in a fresh process that finds the codec through the
``numcodecs.codecs`` entry point, and wrong configurations are clear errors."""

from __future__ import annotations

import json
import os
import textwrap
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import xarray as xr
import zarr
from stock import in_fresh_python
from test_anscombe import all_counts, error_bound

from bluesky_zarr.codecs import AnscombeCodec, AnscombeNumcodec, CodecError

ROOT = Path(__file__).parents[2]
ID = "bluesky_zarr.anscombe"


def frames(gain: float, zero_level: float, shape: tuple[int, ...], dtype: str = "<u2") -> np.ndarray:
    rng = np.random.default_rng(3)
    photons = rng.poisson(rng.uniform(0, 400, shape))
    return np.clip(zero_level + gain * photons + rng.normal(0, 1.5, shape), 0, 65535).astype(dtype)


def write_v2(path: Path, data: np.ndarray, codec: AnscombeNumcodec) -> None:
    """A v2 group holding ``image`` (with xarray's ``_ARRAY_DIMENSIONS``), Anscombe then zstd."""
    group = zarr.open_group(path, mode="w", zarr_format=2)
    array = group.create_array(
        "image",
        shape=data.shape,
        dtype=data.dtype,
        chunks=(1, *data.shape[1:]),
        filters=[codec],
        compressors=numcodecs.Zstd(level=3),
        attributes={"_ARRAY_DIMENSIONS": ["frame", "y", "x"]},
    )
    array[...] = data


def test_the_zarray_entry_is_the_codecs_configuration_with_dtype_and_astype(tmp_path: Path) -> None:
    codec = AnscombeCodec(zero_level=100, conversion_gain=2.5, beta=0.5)
    numcodec = AnscombeNumcodec.from_codec(codec, "uint16")
    write_v2(tmp_path / "run.zarr", frames(2.5, 100, (2, 8, 8)), numcodec)
    (stored,) = json.loads((tmp_path / "run.zarr" / "image" / ".zarray").read_text())["filters"]
    expected = {
        key: value for key, value in codec.to_dict()["configuration"].items() if key != "encoded_dtype"
    }
    assert stored == {"id": ID, "dtype": "<u2", "astype": "<u2", **expected}
    # numcodecs rebuilds the same filter from it, and the v3 codec it stands for is the same codec
    assert numcodecs.get_codec(stored) == numcodec
    assert numcodec.codec == AnscombeCodec(zero_level=100, conversion_gain=2.5, encoded_dtype="uint16")
    assert repr(numcodec).startswith("AnscombeNumcodec(dtype='<u2', astype='<u2', zero_level=100.0")


def test_encoded_dtype_is_taken_as_astype() -> None:
    by_v3_name = AnscombeNumcodec(dtype="uint16", encoded_dtype="uint16", conversion_gain=4)
    assert by_v3_name == AnscombeNumcodec(dtype="uint16", astype="<u2", conversion_gain=4)
    assert AnscombeNumcodec(dtype="uint16", conversion_gain=40).astype == np.dtype("uint8")


@pytest.mark.parametrize("dtype", ["uint8", "int8", "<u2", ">u2", "<i2", ">i2"])
def test_every_count_round_trips_within_the_bound_through_bytes(dtype: str) -> None:
    numcodec = AnscombeNumcodec(dtype=dtype, zero_level=20, conversion_gain=1.7, beta=0.6)
    counts = all_counts(np.dtype(dtype).name).astype(dtype)
    codes = numcodec.encode(counts.tobytes())  # a compressor hands bytes on, and gives bytes back
    assert codes.dtype == numcodec.astype and codes.shape == (counts.size,)
    back = numcodec.decode(codes.tobytes())
    assert back.dtype == np.dtype(dtype)
    assert np.all(np.abs(back.astype(float) - counts) <= error_bound(counts, 20, 1.7, 0.6))
    out = np.empty_like(counts)
    assert numcodec.decode(codes, out=out) is out
    np.testing.assert_array_equal(out, back)


def test_codes_keep_the_byte_order_the_configuration_says() -> None:
    """A ``.zarray`` written on a big-endian machine says ``astype: '>u2'``; its codes are read so."""
    native = AnscombeNumcodec(dtype="<u2", conversion_gain=0.5)
    big = numcodecs.get_codec({**native.get_config(), "astype": ">u2"})
    assert big.get_config()["astype"] == ">u2" and native.get_config()["astype"] == "<u2"
    counts = all_counts("uint16")
    stored = big.encode(counts)
    assert stored.dtype == np.dtype(">u2")
    np.testing.assert_array_equal(stored.astype("<u2"), native.encode(counts))
    np.testing.assert_array_equal(big.decode(stored.tobytes()), native.decode(native.encode(counts)))


def test_a_big_endian_v2_array_reads_back_in_its_own_byte_order(tmp_path: Path) -> None:
    data = frames(2.0, 50, (3, 16, 12), dtype=">u2")
    write_v2(tmp_path / "run.zarr", data, AnscombeNumcodec(dtype=">u2", zero_level=50, conversion_gain=2.0))
    back = zarr.open_array(tmp_path / "run.zarr" / "image", mode="r")[...]
    assert back.dtype == np.dtype(">u2")
    assert np.all(np.abs(back.astype(float) - data) <= error_bound(data, 50, 2.0, 0.5))


def _with_entry_point(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh process in which numcodecs finds our entry point.

    An installed bluesky-zarr declares it (``pip install -e .`` reads ``pyproject.toml``); a venv
    whose editable install predates the entry point gets a dist-info made from ``pyproject.toml``'s
    ``numcodecs.codecs`` table, so the process still tests what the project declares.
    """
    env = dict(os.environ)
    if any(point.name == ID for point in entry_points(group="numcodecs.codecs")):
        return env
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    table = declared["numcodecs.codecs"]
    info = tmp_path / "site" / "bluesky_zarr_entry_points-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bluesky-zarr-entry-points\nVersion: 0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in table.items())
    (info / "entry_points.txt").write_text(f"[numcodecs.codecs]\n{lines}")
    env["PYTHONPATH"] = os.pathsep.join([str(info.parent), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_a_fresh_process_reads_a_v2_array_without_importing_bluesky_zarr(tmp_path: Path) -> None:
    """zarr-python asks numcodecs for the filter by id; numcodecs finds it through the entry point."""
    data = frames(2.5, 100, (3, 24, 32))
    write_v2(
        tmp_path / "run.zarr", data, AnscombeNumcodec(dtype="uint16", zero_level=100, conversion_gain=2.5)
    )
    np.save(tmp_path / "expected.npy", zarr.open_array(tmp_path / "run.zarr" / "image", mode="r")[...])
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import xarray as xr
        import zarr

        assert not any(name.startswith("bluesky_zarr") for name in sys.modules)
        expected = np.load({str(tmp_path / "expected.npy")!r})
        array = zarr.open_array({str(tmp_path / "run.zarr" / "image")!r}, mode="r")
        np.testing.assert_array_equal(array[...], expected)
        by_xarray = xr.open_zarr({str(tmp_path / "run.zarr")!r}, consolidated=False, zarr_format=2)
        np.testing.assert_array_equal(by_xarray["image"].values, expected)
        print("read", type(array.filters[0]).__module__)
        """
    )
    stdout = in_fresh_python(script, env=_with_entry_point(tmp_path))
    assert "read bluesky_zarr.codecs._numcodecs" in stdout
    assert np.all(
        np.abs(np.load(tmp_path / "expected.npy").astype(float) - data) <= error_bound(data, 100, 2.5, 0.5)
    )


def test_xarray_reads_the_v2_array_in_process(tmp_path: Path) -> None:
    data = frames(1.0, 10, (2, 8, 10))
    write_v2(tmp_path / "run.zarr", data, AnscombeNumcodec(dtype="uint16", zero_level=10))
    image = xr.open_zarr(tmp_path / "run.zarr", consolidated=False, zarr_format=2)["image"]
    assert image.dims == ("frame", "y", "x")
    assert np.all(np.abs(image.values.astype(float) - data) <= error_bound(data, 10, 1.0, 0.5))


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"zero_level": 100}, ["give dtype", "the array's dtype"]),
        ({"dtype": "float32"}, ["camera counts", "float32"]),
        ({"dtype": "nope"}, ["dtype 'nope' is not a data type"]),
        ({"dtype": "uint16", "gain": 2.5}, ["unknown configuration ['gain']", "takes dtype, astype"]),
        ({"dtype": "uint16", "beta": -1}, ["beta must be a positive"]),
        ({"dtype": "uint16", "astype": "int32"}, ["'uint8' or 'uint16'"]),
        ({"dtype": "uint16", "astype": "uint8", "beta": 0.1}, ["5110 codes", "holds (256)"]),
        ({"dtype": "uint16", "astype": "uint8", "encoded_dtype": "uint16"}, ["disagree", "give astype only"]),
    ],
)
def test_a_wrong_configuration_is_a_clear_error(config: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(CodecError) as caught:
        numcodecs.get_codec({"id": ID, **config})  # as a reader meets it, in a .zarray
    for word in words:
        assert word in str(caught.value)


def test_chunks_that_do_not_fit_the_filter_are_clear_errors() -> None:
    numcodec = AnscombeNumcodec(dtype="<u2", conversion_gain=2.0)
    with pytest.raises(CodecError, match=r"a chunk of >u2 reached a filter made for uint16; .*dtype='>u2'"):
        numcodec.encode(np.zeros(4, dtype=">u2"))
    with pytest.raises(CodecError, match="float32"):
        numcodec.encode(np.zeros(4, dtype="float32"))
    with pytest.raises(CodecError, match="not a whole number of uint16 codes"):
        numcodec.decode(b"\x00\x01\x02")
    with pytest.raises(CodecError, match="corrupt"):
        numcodec.decode(np.full(2, 65535, dtype="<u2").tobytes())  # codes no count has

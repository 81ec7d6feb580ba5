"""Irregular (rectilinear) chunk grids: which stock readers read one, and the writer's refusal.

The writer does not offer the rectilinear chunk grid (zarr-extensions, ``chunk-grids/rectilinear``)
because not every stock reader reads it; ``docs/how-to/choose-chunks-and-shards.md``, "Irregular
chunk grids", says which did what. The reader tests here write a small array with such a grid by
hand (its ``zarr.json`` and chunk files) and check each installed reader against those findings: when
one fails, a reader has changed, and the page (and the writer's refusal) should be looked at again.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts
import xarray as xr
import zarr
from packaging.version import Version

from bluesky_zarr import ConfigurationError, HDF5Writer, ZarrWriter

EDGES = ([2, 3, 5], [4, 4, 5])
"""Chunk edge lengths along each axis of a 10 x 12 array; along x they reach past its end (13)."""
STORED_EDGES = [[2, 3, 5], [[4, 2], 5]]
"""The same as stored: the second axis run-length encoded, as the extension allows."""
ZARR_READS_RECTILINEAR = Version(zarr.__version__) >= Version("3.2")
REVISIT = "a stock reader changed: revisit 'Irregular chunk grids' in docs/how-to/choose-chunks-and-shards.md"


def assert_refused(open_it: Callable[[], object], words: str) -> None:
    """``open_it`` raises a ValueError that says ``words``; if it reads instead, the findings are stale."""
    try:
        open_it()
    except ValueError as error:
        assert words in str(error), f"{error}\n{REVISIT}"
    else:
        pytest.fail(f"it read a rectilinear grid: {REVISIT}")


def write_rectilinear(group: Path) -> np.ndarray:
    """A group holding one 10 x 12 uint16 array ``image`` on a rectilinear grid, gzip chunks; its values."""
    values = np.arange(120, dtype="<u2").reshape(10, 12)
    array = group / "image"
    array.mkdir(parents=True)
    (group / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    metadata = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [10, 12],
        "data_type": "uint16",
        "chunk_grid": {
            "name": "rectilinear",
            "configuration": {"kind": "inline", "chunk_shapes": STORED_EDGES},
        },
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "gzip", "configuration": {"level": 1}},
        ],
        "attributes": {},
        "dimension_names": ["y", "x"],
    }
    (array / "zarr.json").write_text(json.dumps(metadata))
    starts = [np.cumsum([0, *edges]) for edges in EDGES]
    for i, height in enumerate(EDGES[0]):
        for j, width in enumerate(EDGES[1]):
            chunk = np.zeros((height, width), dtype="<u2")  # a chunk past the array's end is padded
            part = values[starts[0][i] : starts[0][i] + height, starts[1][j] : starts[1][j] + width]
            chunk[: part.shape[0], : part.shape[1]] = part
            (array / "c" / str(i)).mkdir(parents=True, exist_ok=True)
            (array / "c" / str(i) / str(j)).write_bytes(gzip.compress(chunk.tobytes(), 1))
    return values


def test_tensorstore_refuses_a_rectilinear_grid(tmp_path: Path) -> None:
    write_rectilinear(tmp_path / "run.zarr")
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(tmp_path / "run.zarr" / "image")}}
    assert_refused(
        lambda: ts.open(spec, read=True).result(), 'Expected "regular", but received: "rectilinear"'
    )


@pytest.mark.skipif(ZARR_READS_RECTILINEAR, reason="zarr-python 3.2 and later know the rectilinear grid")
def test_zarr_python_before_3_2_refuses_a_rectilinear_grid(tmp_path: Path) -> None:
    write_rectilinear(tmp_path / "run.zarr")
    assert_refused(lambda: zarr.open_array(tmp_path / "run.zarr" / "image", mode="r"), "Unknown chunk grid")
    assert_refused(lambda: xr.open_zarr(tmp_path / "run.zarr", consolidated=False), "Unknown chunk grid")


@pytest.mark.skipif(not ZARR_READS_RECTILINEAR, reason="zarr-python before 3.2 has no rectilinear grid")
def test_zarr_python_reads_a_rectilinear_grid_only_behind_its_flag(tmp_path: Path) -> None:
    values = write_rectilinear(tmp_path / "run.zarr")
    # off by default, for the array and for every stock way of opening the group that holds it
    with zarr.config.set({"array.rectilinear_chunks": False}):
        for open_it in (
            lambda: zarr.open_array(tmp_path / "run.zarr" / "image", mode="r"),
            lambda: xr.open_zarr(tmp_path / "run.zarr", consolidated=False),
            lambda: xr.open_datatree(tmp_path / "run.zarr", engine="zarr", consolidated=False),
        ):
            assert_refused(open_it, "array.rectilinear_chunks")
    with zarr.config.set({"array.rectilinear_chunks": True}):
        array = zarr.open_array(tmp_path / "run.zarr" / "image", mode="r")
        assert array.read_chunk_sizes == ((2, 3, 5), (4, 4, 4))
        np.testing.assert_array_equal(array[...], values)
        np.testing.assert_array_equal(array[3:7, 5:9], values[3:7, 5:9])
        image = xr.open_zarr(tmp_path / "run.zarr", consolidated=False)["image"]
        assert image.chunks == ((2, 3, 5), (4, 4, 4))
        np.testing.assert_array_equal(image.values, values)


@pytest.mark.parametrize(
    "options",
    [
        {"chunks": {"camera_image": {"y": [16, 64, 16], "x": 96}}},
        {"chunks": {"camera_image": (1, 1, [16, 64, 16], 96)}},
        {"shards": {"camera_image": {"y": [[32, 3]]}}},
    ],
)
def test_the_writer_refuses_an_irregular_grid_and_says_why(tmp_path: Path, options: dict) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ZarrWriter(tmp_path, **options)
    message = str(caught.value)
    for words in (
        "'camera_image'",
        "rectilinear",
        "tensorstore",
        "array.rectilinear_chunks",
        "shards=",
        "Irregular chunk grids",
    ):
        assert words in message, message
    assert not list(tmp_path.iterdir())


def test_hdf5_refuses_an_irregular_grid_in_its_own_words(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"HDF5: data key 'camera_image': chunks along 'y' are a list"
    ):
        HDF5Writer(tmp_path, chunks={"camera_image": {"y": [16, 64, 16]}})

"""The adapter to zarr-python's internals: the only module that uses them, the same on every zarr 3.x."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec

from bluesky_zarr._zarr_adapter import blosc_cname, blosc_shuffle, chunk_spec, native_dtype
from bluesky_zarr.layout import grid_from_start, stream_schema
from bluesky_zarr.sinks.zarr import ZarrOptions, zarr_layout
from bluesky_zarr.sinks.zarr._metadata import array_document, group_document

PACKAGE = Path(__file__).resolve().parents[1] / "bluesky_zarr"


def _internal(module: str) -> bool:
    """``zarr.core.*``, ``zarr.registry`` and any private module of zarr (``zarr.codecs._blosc``)."""
    parts = module.split(".")
    return parts[0] == "zarr" and (
        parts[1:2] in (["core"], ["registry"]) or any(p.startswith("_") for p in parts)
    )


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_only_the_adapter_imports_zarr_internals() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): name
        for path in PACKAGE.rglob("*.py")
        if path.name != "_zarr_adapter.py"
        for name in _imports(path)
        if _internal(name)
    }
    assert offenders == {}, f"import these through bluesky_zarr._zarr_adapter: {offenders}"


@pytest.mark.parametrize("cname", ["lz4", "zstd", "zlib"])
@pytest.mark.parametrize("shuffle", ["noshuffle", "shuffle", "bitshuffle"])
def test_blosc_names_are_plain_strings(cname: str, shuffle: str) -> None:
    made = BloscCodec(cname=cname, clevel=3, shuffle=shuffle)  # type: ignore[arg-type]
    read = BloscCodec.from_dict({"name": "blosc", "configuration": made.to_dict()["configuration"]})
    for codec in (made, read):
        assert (blosc_cname(codec), blosc_shuffle(codec)) == (cname, shuffle)
        assert type(blosc_cname(codec)) is str and type(blosc_shuffle(codec)) is str


@pytest.mark.parametrize("dtype", [np.dtype("<u2"), np.dtype("<f8"), np.dtype("bool"), str])
def test_chunk_spec_holds_the_dtype_and_its_default_fill(dtype: np.dtype | type[str]) -> None:
    spec = chunk_spec(dtype, 3)
    assert spec.shape == (1, 1, 1)
    if dtype is str:
        assert native_dtype(spec).kind in "OUT"  # zarr's variable-length string
    else:
        assert native_dtype(spec) == dtype


@pytest.mark.parametrize(
    ("data_key", "options"),
    [
        ({"dtype": "array", "dtype_numpy": "<u2", "shape": [8, 6], "dims": ["y", "x"]}, {}),
        ({"dtype": "array", "dtype_numpy": "<u2", "shape": [8, 6]}, {"codecs": {"k": "blosc-zstd+crc32c"}}),
        ({"dtype": "array", "dtype_numpy": "<u2", "shape": [8, 6]}, {"shards": {"k": {"p": 2}}}),
        ({"dtype": "number", "shape": []}, {}),
        ({"dtype": "boolean", "shape": [3]}, {}),
        ({"dtype": "string", "shape": []}, {}),
    ],
)
def test_the_sinks_zarr_json_is_what_zarr_itself_makes_of_it(tmp_path: Path, data_key, options) -> None:
    """The sinks write zarr.json as plain JSON: zarr-python reads each one back to the same document."""
    start = {"uid": "u", "shape": [3, 2], "motors": ["w", "p"]}
    descriptor = {"name": "primary", "uid": "d", "data_keys": {"k": {"source": "s", **data_key}}}
    layout = zarr_layout(stream_schema(start, [descriptor], grid_from_start(start)), ZarrOptions(**options))
    store = tmp_path / "s.zarr"
    store.mkdir()
    (store / "zarr.json").write_text(json.dumps(group_document({"status": "running", "n": [1, 2]})))
    for name, spec in layout.arrays.items():
        document = array_document(spec, spec.shape)
        (store / name).mkdir()
        (store / name / "zarr.json").write_text(json.dumps(document))
        array = zarr.open_array(store / name, mode="r")
        assert json.loads(json.dumps(array.metadata.to_dict())) == document, name
    assert dict(zarr.open_group(store, mode="r").attrs) == {"status": "running", "n": [1, 2]}

"""The adapter to zarr-python's internals: the only module that uses them, the same on every zarr 3.x."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec

from bluesky_zarr._zarr_adapter import (
    array_metadata_json,
    blosc_cname,
    blosc_shuffle,
    chunk_spec,
    group_metadata_json,
    native_dtype,
)

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


def test_metadata_documents_open_with_zarr(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    (store / "a").mkdir(parents=True)
    (store / "zarr.json").write_bytes(group_metadata_json({"status": "running", "n": [1, 2]}))
    (store / "a" / "zarr.json").write_bytes(
        array_metadata_json(
            shape=(2, 3),
            dtype=np.dtype("<f4"),
            chunk_shape=(1, 3),
            chunk_key_encoding={"name": "default", "configuration": {"separator": "."}},
            fill_value=float("nan"),
            codecs=[{"name": "bytes", "configuration": {"endian": "little"}}],
            attributes={"units": "nm"},
            dimension_names=("t", "x"),
        )
    )
    document = json.loads((store / "a" / "zarr.json").read_bytes())
    assert document["fill_value"] == "NaN" and document["data_type"] == "float32"
    group = zarr.open_group(store, mode="r")
    assert dict(group.attrs) == {"status": "running", "n": [1, 2]}
    array = zarr.open_array(store / "a", mode="r")
    assert array.shape == (2, 3) and array.metadata.dimension_names == ("t", "x")
    assert np.isnan(array[:]).all()

"""Read stores back with stock readers only (xarray, tensorstore, json): never with our own code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import tensorstore as ts
import xarray as xr


def root_attrs(store: Path) -> dict[str, Any]:
    """The root group's attributes, parsed as strict JSON (NaN literals are refused)."""
    text = (store / "zarr.json").read_text()
    metadata = json.loads(text, parse_constant=_no_constants)
    return metadata["attributes"]  # type: ignore[no-any-return]


def _no_constants(name: str) -> None:
    raise ValueError(f"zarr.json holds the non-JSON constant {name}")


def open_stream(store: Path, stream: str = "primary") -> xr.Dataset:
    """A stream with plain ``xr.open_zarr``, raw values (no time decoding)."""
    return xr.open_zarr(store, group=stream, consolidated=False, zarr_format=3, decode_times=False).load()


def tensorstore_read(store: Path, stream: str, name: str) -> np.ndarray:
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(store / stream / name)}}
    return np.asarray(ts.open(spec, read=True).result().read().result())


def array_paths(store: Path) -> list[Path]:
    """Every array in a store, found from the zarr.json files on disk."""
    arrays = []
    for meta in sorted(store.rglob("zarr.json")):
        if json.loads(meta.read_text())["node_type"] == "array":
            arrays.append(meta.parent.relative_to(store))
    return arrays


def assert_tensorstore_agrees(store: Path) -> int:
    """Every numeric array reads the same with tensorstore as with xarray; returns how many."""
    checked = 0
    for relative in array_paths(store):
        meta = json.loads((store / relative / "zarr.json").read_text())
        if meta["data_type"] == "string":
            continue
        group, name = relative.parent.as_posix(), relative.name
        by_xarray = xr.open_zarr(store, group=group, consolidated=False, zarr_format=3, decode_times=False)
        expected = by_xarray.variables[name].values
        np.testing.assert_array_equal(tensorstore_read(store, group, name), expected, err_msg=str(relative))
        checked += 1
    return checked


def has_group(store: Path, group: str) -> bool:
    """Whether the store holds the group ``group``, from its zarr.json on disk."""
    meta = store / group / "zarr.json"
    return meta.exists() and json.loads(meta.read_text())["node_type"] == "group"


def variables_by_data_key(ds: xr.Dataset) -> dict[str, str]:
    """Data key -> variable, from each variable's ``data_key`` attribute (a readback named like its
    dimension is stored as ``<key>_readback``)."""
    return {
        v.attrs["data_key"]["name"]: str(name)
        for name, v in ds.variables.items()
        if isinstance(v.attrs.get("data_key"), dict)
    }


def assert_unwritten_points_hold_fill_values(ds: xr.Dataset, grid_dims: list[str]) -> None:
    """Where the ``written`` mask says a grid point holds nothing, every float array holds NaN there:
    no value stands at a point the mask does not vouch for, and no fill value passes for a reading."""
    unwritten = ~ds["written"].values
    for name, variable in ds.variables.items():
        if list(variable.dims[: len(grid_dims)]) == grid_dims and variable.dtype.kind == "f":
            assert np.isnan(variable.values[unwritten]).all(), f"{name} holds values at unwritten points"

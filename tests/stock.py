"""Read stores back with stock readers only (xarray, tensorstore, json): never with our own code (but
for the NetCDF check, which starts from what `open_run` gives)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorstore as ts
import xarray as xr


def in_fresh_python(script: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``script`` in a new Python (warnings are errors), as a user of stock readers who never
    imported bluesky_zarr would; its stdout, once it succeeded."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True, text=True, timeout=120, check=False, env=None if env is None else dict(env),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


JSON_TEXT = {"start", "stop", "bluesky_zarr", "descriptors", "grid", "overflow", "data_key", "dtype_widened",
             "detector_files"}  # fmt: skip
"""The attributes the store layout says hold JSON text (so that NetCDF holds them too)."""


def decode_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v) if k in JSON_TEXT and isinstance(v, str) else v for k, v in attrs.items()}


def root_attrs(store: Path) -> dict[str, Any]:
    """The root group's attributes, parsed as strict JSON (NaN literals are refused), the JSON text of
    documents decoded."""
    text = (store / "zarr.json").read_text()
    metadata = json.loads(text, parse_constant=_no_constants)
    return decode_attributes(metadata["attributes"])


def _no_constants(name: str) -> None:
    raise ValueError(f"zarr.json holds the non-JSON constant {name}")


def open_stream(store: Path, stream: str = "primary") -> xr.Dataset:
    """A stream with plain ``xr.open_zarr``, raw values (no time decoding), the JSON text of its
    attributes (descriptors, grid, data_key, ...) decoded."""
    ds = xr.open_zarr(store, group=stream, consolidated=False, zarr_format=3, decode_times=False).load()
    return decoded(ds)


def decoded(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the attributes stored as JSON text (so NetCDF holds them) decoded, in place."""
    ds.attrs = decode_attributes(ds.attrs)
    for variable in ds.variables.values():
        variable.attrs = decode_attributes(variable.attrs)
    return ds


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
    keys = {str(name): decode_attributes(v.attrs).get("data_key") for name, v in ds.variables.items()}
    return {key["name"]: name for name, key in keys.items() if isinstance(key, dict)}


def assert_unwritten_points_hold_fill_values(ds: xr.Dataset, grid_dims: list[str]) -> None:
    """Where the ``written`` mask says a grid point holds nothing, every float array holds NaN there:
    no value stands at a point the mask does not vouch for, and no fill value passes for a reading."""
    unwritten = ~ds["written"].values
    for name, variable in ds.variables.items():
        if list(variable.dims[: len(grid_dims)]) == grid_dims and variable.dtype.kind == "f":
            assert np.isnan(variable.values[unwritten]).all(), f"{name} holds values at unwritten points"


def assert_exports_to_netcdf(store: Path, directory: Path) -> None:
    """The run, opened with ``open_run``, writes as NetCDF with every engine here and reads back
    identical; so does each stream from plain ``xr.open_zarr`` with h5netcdf."""
    from bluesky_zarr import open_run  # the one reader of ours whose output is checked here

    tree = open_run(store).load()
    for engine in ("netcdf4", "h5netcdf"):
        path = directory / f"{store.stem}-{engine}.nc"
        tree.to_netcdf(path, engine=engine)
        with xr.open_datatree(path, engine=engine) as back:
            xr.testing.assert_identical(back.load(), tree)
    for node in tree.subtree:
        if node.path != "/" and node.has_data:
            ds = xr.open_zarr(store, group=node.path.lstrip("/"), zarr_format=3)
            path = directory / f"{store.stem}-{node.name}.nc"
            ds.to_netcdf(path, engine="h5netcdf")
            with xr.open_dataset(path, engine="h5netcdf") as back:
                xr.testing.assert_equal(back.load(), ds.load())


# --- HDF5: h5py (as a SWMR reader, which also opens a file whose writer was killed) and xarray ---------


def hdf5_attrs(obj: Any) -> dict[str, Any]:
    """The attributes of an h5py object as plain Python, the JSON text of documents decoded."""
    plain = {k: v.tolist() if isinstance(v, np.ndarray | np.generic) else v for k, v in obj.attrs.items()}
    return decode_attributes(plain)


def hdf5_root_attrs(path: Path) -> dict[str, Any]:
    import h5py

    with h5py.File(path, "r", swmr=True) as f:
        return hdf5_attrs(f)


def hdf5_has_group(path: Path, group: str) -> bool:
    import h5py

    with h5py.File(path, "r", swmr=True) as f:
        return isinstance(f.get(group), h5py.Group)


def open_hdf5_stream(path: Path, stream: str = "primary") -> xr.Dataset:
    """A stream group (``entry/<stream>``) with xarray's h5netcdf engine (dimensions from the HDF5
    dimension scales), raw values, its attributes decoded; checked against h5py's own reading."""
    import h5py

    with h5py.File(path, "r", swmr=True) as f:
        ds = decoded(
            xr.open_dataset(f, engine="h5netcdf", group=f"entry/{stream}", decode_times=False).load()
        )
        group = f[f"entry/{stream}"]
        for name, variable in ds.variables.items():
            by_h5py = group[str(name)][...]
            if by_h5py.dtype.kind == "O":
                by_h5py = by_h5py.astype(str)
            np.testing.assert_array_equal(variable.values, by_h5py, err_msg=f"{name} by h5py")
    return ds

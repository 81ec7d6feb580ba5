"""Opening a stored run with xarray."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from .._errors import RunNotFoundError
from .._naming import HDF5_SUFFIXES
from ..storage import LocalStorage, Target, open_storage

__all__ = ["open_run"]


def open_run(path: Target, *, storage_options: Mapping[str, Any] | None = None) -> xr.DataTree:
    """Open a run's Zarr store (or HDF5 file) as an :class:`xarray.DataTree`, one node per stream.

    Grid streams have the scan's dimensions and setpoint coordinates, so
    ``tree["primary"].camera_image.sel(wavelength=750, position=0)`` works as it is. The root's
    attributes hold the start and stop documents and the run's ``status``. Works on a store that
    is still being written or whose writer crashed: use each grid stream's ``written`` mask to
    tell which points hold data.

    Documents and other nested attributes are JSON text (``json.loads(tree.attrs["start"])``), so
    ``tree.to_netcdf("run.nc")`` writes the run as NetCDF as it is; the tree leaves out the
    ``_ARRAY_DIMENSIONS`` attribute that each array also carries for Zarr v2 readers (xarray's
    Zarr v3 path keeps it, and netCDF-C reserves the name).

    A run's HDF5 file (``<run>.h5``, ``.hdf5`` or ``.nxs``) gives the same tree, read lazily with
    xarray's h5netcdf engine from the file opened as a SWMR reader (so also while it is written,
    or after its writer was killed): the streams are the groups of its NeXus ``entry``, the root's
    attributes the file's.

    Parameters
    ----------
    path
        The store: a local path, a ``file://`` URL, or ``s3://bucket/prefix/<run>.zarr``; or a
        local HDF5 file.
    storage_options
        For an ``s3://`` store: ``endpoint_url``, ``region``, ... (as for the writers); the
        credentials come from the environment.

    Raises
    ------
    RunNotFoundError
        ``path`` is neither a Zarr v3 store nor an HDF5 file (also a ``FileNotFoundError``).
    """
    storage = open_storage(path, storage_options)
    if isinstance(storage, LocalStorage) and storage.root.suffix in HDF5_SUFFIXES:
        return _open_hdf5(storage.root)
    root = storage.get("zarr.json")
    if root is None:
        raise RunNotFoundError(
            f"{storage.location} is not a Zarr v3 store (no zarr.json); give the path of a <run>.zarr "
            "(or of a <run>.h5)"
        )
    consolidated = b'"consolidated_metadata"' in root
    tree = xr.open_datatree(storage.zarr_store(), engine="zarr", consolidated=consolidated, zarr_format=3)
    for node in tree.subtree:
        for variable in node.variables.values():
            variable.attrs.pop("_ARRAY_DIMENSIONS", None)
    return tree


def _open_hdf5(path: Path) -> xr.DataTree:
    import h5py

    if not path.is_file():
        raise RunNotFoundError(f"{path} does not exist; give the path of a run's <run>.h5 file")
    try:
        h5 = h5py.File(path, "r", swmr=True)  # as the writer left it: running, finished or killed
    except OSError as err:
        raise RunNotFoundError(f"{path} is not an HDF5 file h5py can open ({err})") from err
    if "entry" not in h5:
        h5.close()
        raise RunNotFoundError(f"{path} holds no NeXus 'entry' group: it is not a run's HDF5 file")
    tree = xr.open_datatree(h5, engine="h5netcdf", group="entry", phony_dims="access")
    tree.attrs = dict(xr.open_dataset(h5, engine="h5netcdf", phony_dims="access").attrs)
    return tree

"""Opening a stored run with xarray."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xarray as xr

from .._errors import RunNotFoundError
from ..storage import Target, open_storage

__all__ = ["open_run"]


def open_run(path: Target, *, storage_options: Mapping[str, Any] | None = None) -> xr.DataTree:
    """Open a run's Zarr store as an :class:`xarray.DataTree`, one node per stream.

    Grid streams have the scan's dimensions and setpoint coordinates, so
    ``tree["primary"].camera_image.sel(wavelength=750, position=0)`` works as it is. The root's
    attributes hold the start and stop documents and the run's ``status``. Works on a store that
    is still being written or whose writer crashed: use each grid stream's ``written`` mask to
    tell which points hold data.

    Documents and other nested attributes are JSON text (``json.loads(tree.attrs["start"])``), so
    ``tree.to_netcdf("run.nc")`` writes the run as NetCDF as it is; the tree leaves out the
    ``_ARRAY_DIMENSIONS`` attribute that each array also carries for Zarr v2 readers (xarray's
    Zarr v3 path keeps it, and netCDF-C reserves the name).

    Parameters
    ----------
    path
        The store: a local path, a ``file://`` URL, or ``s3://bucket/prefix/<run>.zarr``.
    storage_options
        For an ``s3://`` store: ``endpoint_url``, ``region``, ... (as for the writers); the
        credentials come from the environment.

    Raises
    ------
    RunNotFoundError
        ``path`` is not a Zarr v3 store (also a ``FileNotFoundError``).
    """
    storage = open_storage(path, storage_options)
    root = storage.get("zarr.json")
    if root is None:
        raise RunNotFoundError(
            f"{storage.location} is not a Zarr v3 store (no zarr.json); give the path of a <run>.zarr"
        )
    consolidated = b'"consolidated_metadata"' in root
    tree = xr.open_datatree(storage.zarr_store(), engine="zarr", consolidated=consolidated, zarr_format=3)
    for node in tree.subtree:
        for variable in node.variables.values():
            variable.attrs.pop("_ARRAY_DIMENSIONS", None)
    return tree

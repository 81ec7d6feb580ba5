"""Opening a stored run with xarray."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from .._errors import RunNotFoundError

__all__ = ["open_run"]


def open_run(path: str | Path) -> xr.DataTree:
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

    Raises
    ------
    RunNotFoundError
        ``path`` is not a Zarr v3 store (also a ``FileNotFoundError``).
    """
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise RunNotFoundError(f"{path} is not a Zarr v3 store (no zarr.json); give the path of a <run>.zarr")
    consolidated = b'"consolidated_metadata"' in (path / "zarr.json").read_bytes()
    tree = xr.open_datatree(path, engine="zarr", consolidated=consolidated, zarr_format=3)
    for node in tree.subtree:
        for variable in node.variables.values():
            variable.attrs.pop("_ARRAY_DIMENSIONS", None)
    return tree

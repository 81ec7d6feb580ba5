"""A quick look at a run: one frame at a chosen grid point, and the spectrum along the outer axis."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from .._encoding import decode_attributes
from .._errors import BlueskyZarrError
from ._open_run import open_run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["quick_look"]


def _data_key(variable: xr.DataArray) -> str | None:
    key = decode_attributes(variable.attrs).get("data_key")
    return key.get("name") if isinstance(key, dict) else None


def _frame_variable(ds: xr.Dataset, dims: list[str], key: str | None) -> str:
    """The variable to show: data key ``key``, else the first one with two dims past the grid's."""
    frames = [
        str(name)
        for name, v in ds.data_vars.items()
        if list(v.dims[: len(dims)]) == dims and v.ndim == len(dims) + 2 and v.dtype.kind in "uif"
    ]
    if key is None:
        if not frames:
            raise BlueskyZarrError(
                f"stream {ds.attrs.get('stream')!r} holds no frames (an array with two dimensions past the "
                f"grid's {dims}); give key= (--key) of a data key to plot"
            )
        return frames[0]
    for name in frames:
        if key in (name, _data_key(ds[name])):
            return name
    raise BlueskyZarrError(
        f"stream {ds.attrs.get('stream')!r} has no frames of data key {key!r}; "
        f"its frames: {', '.join(frames)}"
    )


def _label(variable: xr.DataArray, name: str) -> str:
    units = variable.attrs.get("units")
    return f"{name} ({units})" if units else name


def quick_look(
    path: str | Path,
    key: str | None = None,
    sel: Mapping[str, float] | None = None,
    *,
    stream: str = "primary",
    output: str | Path | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Figure:
    """Draw the frame at one grid point and the spectrum: the frame's mean along the outer axis.

    Parameters
    ----------
    path
        A run's Zarr store (a path, or an ``s3://`` URL) or HDF5 file: what
        :func:`~bluesky_zarr.open_run` opens.
    key
        The data key of the frames (default: the stream's first array of frames).
    sel
        Grid dimension -> value, nearest point (``{"wavelength": 750, "position": 0}``); a
        dimension not given is at its first point. The spectrum runs along the outer (first)
        dimension at the others' selected values.
    stream
        The grid stream (default ``primary``).
    output
        A PNG to write, if given.
    storage_options
        For an ``s3://`` store, as for :func:`~bluesky_zarr.open_run`.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the frame, and the spectrum (its line's data is the plotted mean).

    Raises
    ------
    BlueskyZarrError
        The stream has no grid, no frames of ``key``, or ``sel`` names a dimension it has not.
    """
    from matplotlib.figure import Figure

    ds = open_run(path, storage_options=storage_options)[stream].to_dataset()
    grid = decode_attributes(ds.attrs).get("grid")
    if not isinstance(grid, dict):
        raise BlueskyZarrError(f"{path}: stream {stream!r} is not on a grid; quick_look draws grid scans")
    dims = list(grid["dims"])
    name = _frame_variable(ds, dims, key)
    unknown = sorted(set(sel or {}) - set(dims))
    if unknown:
        raise BlueskyZarrError(
            f"{path}: stream {stream!r} has no grid dimension {unknown}; its dims are {dims}"
        )
    point = {d: (sel or {}).get(d, ds[d].values[0]) for d in dims}
    data = ds[name].where(ds["written"]) if "written" in ds else ds[name]
    frame = data.sel(point, method="nearest")
    outer, rest = dims[0], {d: point[d] for d in dims[1:]}
    spectrum = data.sel(rest, method="nearest").mean(dim=list(data.dims[len(dims) :]))

    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    image_axes, line_axes = figure.subplots(1, 2)

    def value(dim: str, at: xr.DataArray) -> str:
        units = ds[dim].attrs.get("units")
        return f"{dim}={float(at[dim]):g}" + (f" {units}" if units else "")

    where = ", ".join(value(d, frame) for d in dims)
    image = image_axes.imshow(np.asarray(frame.values, dtype=float), origin="upper", cmap="viridis")
    image_axes.set_title(f"{name} at {where}", fontsize=9)
    image_axes.set_xlabel(str(frame.dims[1]))
    image_axes.set_ylabel(str(frame.dims[0]))
    figure.colorbar(image, ax=image_axes, label=_label(ds[name], name))
    line_axes.plot(ds[outer].values, spectrum.values, marker="o")
    line_axes.set_xlabel(_label(ds[outer], outer))
    line_axes.set_ylabel(_label(ds[name], f"mean {name}"))
    at = ", ".join(value(d, spectrum) for d in rest)
    line_axes.set_title(f"mean {name} along {outer}" + (f" at {at}" if at else ""), fontsize=9)
    line_axes.grid(True, alpha=0.3)
    if output is not None:
        figure.savefig(output)
    return figure

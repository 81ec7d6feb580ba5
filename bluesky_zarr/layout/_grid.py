"""The grid of a scan, from its start document: pure functions, no I/O.

The start-document keys read here are bluesky's own (``shape``, ``snaking``, ``motors``,
``plan_name``, ``plan_pattern``/``plan_pattern_args``, ``hints``) and, when present, the ``grid``
key that :mod:`bluesky_zarr.plans` writes::

    start["grid"] = {
        "dims": ["wavelength", "position"],
        "setpoints": {"wavelength": [700.0, ...], "position": [0.0, ...]},
        "units": {"wavelength": "nm", "position": "mm"},
        "readbacks": {"wavelength": ["laser_wavelength"], "position": ["stage_position"]},
    }
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["Grid", "GridAxis", "grid_from_start"]


@dataclass(frozen=True)
class GridAxis:
    """One axis of a grid scan.

    ``setpoints`` is ``None`` when the start document does not say them; ``relative`` is true for
    ``rel_*`` plans, whose setpoints are offsets from where the motor started.
    """

    dim: str
    setpoints: tuple[float, ...] | None = None
    units: str | None = None
    readbacks: tuple[str, ...] = ()
    relative: bool = False


@dataclass(frozen=True)
class Grid:
    """The grid of a scan: axes outer first, and which axes snake."""

    axes: tuple[GridAxis, ...]
    shape: tuple[int, ...]
    snaking: tuple[bool, ...]
    streams: tuple[str, ...] = ("primary",)

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(axis.dim for axis in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def indices(self, seq_nums: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid indices of events by ``seq_num`` (1-based, in the order bluesky moves).

        Returns ``(inside, index)``: a boolean mask of the events that fall on the grid, and an
        ``(n_inside, ndim)`` integer array of their indices, with bluesky's snaking applied.
        """
        linear = np.asarray(seq_nums, dtype=np.int64) - 1
        inside = (linear >= 0) & (linear < self.size)
        linear = linear[inside]
        index = np.stack(np.unravel_index(linear, self.shape), axis=1).astype(np.int64)
        for axis in range(1, len(self.shape)):
            if self.snaking[axis]:
                passes = linear // math.prod(self.shape[axis:])
                odd = passes % 2 == 1
                index[odd, axis] = self.shape[axis] - 1 - index[odd, axis]
        return inside, index


_MOTOR_NAME = re.compile(r"name='([^']*)'")


def _positive_ints(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, list | tuple) or not value:
        return None
    try:
        ints = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        return None
    if any(i < 1 or i != v for i, v in zip(ints, value, strict=True)):
        return None
    return ints


def _pattern_axes(start: Mapping[str, Any]) -> list[tuple[str | None, list[float], bool | None]]:
    """Parse ``plan_pattern_args`` of bluesky's grid plans: (motor name, setpoints, snake flag)."""
    pattern = start.get("plan_pattern")
    args = (start.get("plan_pattern_args") or {}).get("args")
    if not isinstance(args, list | tuple):
        return []
    axes: list[tuple[str | None, list[float], bool | None]] = []
    items = list(args)
    while items:
        motor = items.pop(0)
        if not isinstance(motor, str):
            return []
        found = _MOTOR_NAME.search(motor)
        name = found.group(1) if found else None
        if pattern == "outer_list_product" and items:
            values = items.pop(0)
            if not isinstance(values, list | tuple):
                return []
            axes.append((name, [float(v) for v in values], None))
        elif pattern == "outer_product" and len(items) >= 3:
            first, last, num = items[:3]
            del items[:3]
            snake = None
            if items and isinstance(items[0], bool):
                snake = items.pop(0)
            axes.append((name, [float(v) for v in np.linspace(first, last, int(num))], snake))
        else:
            return []
    return axes


def _snaking(start: Mapping[str, Any], ndim: int, motors: Sequence[str]) -> tuple[bool, ...]:
    snaking = start.get("snaking")
    if isinstance(snaking, list | tuple) and len(snaking) == ndim:
        return tuple(bool(s) for s in snaking)
    # list_grid_scan keeps only repr(snake_axes): "True", "False" or a list of motor reprs
    text = str((start.get("plan_pattern_args") or {}).get("snake_axes", start.get("snake_axes", "")))
    if text == "True":
        return (False,) + (True,) * (ndim - 1)
    named = set(_MOTOR_NAME.findall(text))
    return tuple(i > 0 and m in named for i, m in enumerate(motors)) + (False,) * (ndim - len(motors))


def _grid_streams(start: Mapping[str, Any]) -> tuple[str, ...]:
    hints = start.get("hints") or {}
    streams = {d[1] for d in hints.get("dimensions", ()) if isinstance(d, list | tuple) and len(d) == 2}
    return tuple(sorted(s for s in streams if isinstance(s, str))) or ("primary",)


def grid_from_start(start: Mapping[str, Any]) -> Grid | None:
    """The grid a start document declares, or ``None`` when the run is not a grid scan."""
    shape = _positive_ints(start.get("shape"))
    if shape is None:
        return None
    ndim = len(shape)
    declared = start.get("grid") if isinstance(start.get("grid"), Mapping) else None
    motors = [str(m) for m in start.get("motors") or ()]
    relative = str(start.get("plan_name", "")).startswith("rel_")
    axes: list[GridAxis] = []
    if declared is not None and len(declared.get("dims") or ()) == ndim:
        for dim in declared["dims"]:
            setpoints = (declared.get("setpoints") or {}).get(dim)
            readbacks = (declared.get("readbacks") or {}).get(dim) or ()
            axes.append(
                GridAxis(
                    dim=str(dim),
                    setpoints=tuple(float(v) for v in setpoints) if setpoints is not None else None,
                    units=(declared.get("units") or {}).get(dim),
                    readbacks=tuple(str(r) for r in readbacks),
                    relative=relative,
                )
            )
    else:
        parsed = _pattern_axes(start)
        names = motors if len(motors) == ndim else [name or "" for name, _, _ in parsed]
        if len(names) != ndim or not all(names) or len(set(names)) != ndim:
            names = [f"dim_{i}" for i in range(ndim)]
        for i, dim in enumerate(names):
            setpoints = parsed[i][1] if len(parsed) == ndim else None
            axes.append(
                GridAxis(
                    dim=dim,
                    setpoints=tuple(setpoints) if setpoints is not None else None,
                    readbacks=(dim,) if dim in motors else (),
                    relative=relative,
                )
            )
    axes = [
        replace(axis, setpoints=None) if axis.setpoints is not None and len(axis.setpoints) != n else axis
        for axis, n in zip(axes, shape, strict=True)
    ]
    return Grid(
        axes=tuple(axes),
        shape=shape,
        snaking=_snaking(start, ndim, motors or [a.dim for a in axes]),
        streams=_grid_streams(start),
    )

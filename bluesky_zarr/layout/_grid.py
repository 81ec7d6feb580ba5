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

A ``rel_*`` plan's start document says only offsets from where each motor started; that origin
comes from the first events of the grid stream (:func:`anchor_grid`), so that the grid's
setpoints are where the motors were.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["Grid", "GridAxis", "anchor_grid", "grid_from_start"]


@dataclass(frozen=True)
class GridAxis:
    """One axis of a grid scan.

    ``setpoints`` is ``None`` when the start document does not say them. ``relative`` is true for
    ``rel_*`` plans, whose start document says only ``offsets`` from where the motor started:
    once :func:`anchor_grid` knows that ``origin``, ``setpoints`` are the absolute positions
    ``origin + offsets``; while it does not, they are the offsets.
    """

    dim: str
    setpoints: tuple[float, ...] | None = None
    units: str | None = None
    readbacks: tuple[str, ...] = ()
    relative: bool = False
    offsets: tuple[float, ...] | None = None
    """A relative axis's setpoints as the plan says them: offsets from ``origin``."""
    origin: float | None = None
    """Where the motor of a relative axis was when the scan began; ``None`` while unknown."""


@dataclass(frozen=True)
class Grid:
    """The grid of a scan: axes outer first, and which axes snake."""

    axes: tuple[GridAxis, ...]
    shape: tuple[int, ...]
    snaking: tuple[bool, ...]
    streams: tuple[str, ...] = ("primary",)
    anchored: bool = False
    """Whether :func:`anchor_grid` has placed the relative axes (each ``origin`` found, or not)."""

    @property
    def relative(self) -> bool:
        """Whether an axis has offsets that need an origin (a ``rel_*`` plan that says its setpoints)."""
        return any(axis.offsets is not None for axis in self.axes)

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
    axes = [replace(a, offsets=a.setpoints) if a.relative and a.setpoints is not None else a for a in axes]
    return Grid(
        axes=tuple(axes),
        shape=shape,
        snaking=_snaking(start, ndim, motors or [a.dim for a in axes]),
        streams=_grid_streams(start),
    )


def _position_field(axis: GridAxis, descriptors: Sequence[Mapping[str, Any]]) -> str | None:
    """The data key that says where an axis's motor is: its setpoint field (``<motor>_setpoint``,
    an EpicsMotor's ``<motor>_user_setpoint``) among the fields ``object_keys`` gives the motor,
    else its readback; ``None`` when the descriptors declare neither."""
    data_keys: set[str] = set()
    object_keys: dict[str, list[str]] = {}
    for descriptor in descriptors:
        data_keys |= set(descriptor.get("data_keys") or ())
        for obj, fields in (descriptor.get("object_keys") or {}).items():
            object_keys.setdefault(str(obj), []).extend(str(f) for f in fields)
    for readback in axis.readbacks:
        fields = {f for obj, fs in object_keys.items() if obj == readback or readback in fs for f in fs}
        for setpoint in (f"{readback}_setpoint", f"{readback}_user_setpoint"):
            if setpoint in fields and setpoint in data_keys:
                return setpoint
    return next((r for r in axis.readbacks if r in data_keys), None)


def _position(value: Any) -> float | None:
    """A reading as a motor position: a finite real number, else ``None``."""
    if isinstance(value, bool | np.bool_):
        return None
    try:
        position = float(value)
    except (TypeError, ValueError):
        return None
    return position if math.isfinite(position) else None


def anchor_grid(
    grid: Grid,
    descriptors: Sequence[Mapping[str, Any]],
    seq_nums: Sequence[int] | np.ndarray,
    data: Mapping[str, Sequence[Any]],
) -> Grid:
    """The grid with its relative axes placed where their motors were when the scan began.

    The documents do not say that origin; the first events of a stream on the grid do: the
    origin of an axis is the position of its motor in the first of ``seq_nums`` on the grid that
    reads it (the motor's setpoint field, else its readback, found through the ``object_keys`` of
    ``descriptors``), less the axis's offset at that event's grid index. An axis whose origin is
    found gets ``setpoints = origin + offsets``; one whose motor no event reads keeps its offsets
    as setpoints and ``origin=None``: it is never guessed. The grid returned is ``anchored``.

    Parameters
    ----------
    grid
        The run's grid, from :func:`grid_from_start`.
    descriptors
        The descriptor(s) of the events.
    seq_nums, data
        The events, as an event page holds them (``data``: data key -> one value per event).
    """
    if grid.anchored:
        return grid
    inside, index = grid.indices(seq_nums)
    rows = np.flatnonzero(inside)
    axes = []
    for d, axis in enumerate(grid.axes):
        field = _position_field(axis, descriptors) if axis.offsets is not None else None
        values = data.get(field) if field is not None else None
        origin = None
        if axis.offsets is not None and values is not None:
            for k, row in enumerate(rows):
                position = _position(values[int(row)])
                if position is not None:
                    origin = position - axis.offsets[int(index[k, d])]
                    break
        if origin is not None and axis.offsets is not None:
            axis = replace(axis, setpoints=tuple(origin + o for o in axis.offsets), origin=origin)
        axes.append(axis)
    return replace(grid, axes=tuple(axes), anchored=True)

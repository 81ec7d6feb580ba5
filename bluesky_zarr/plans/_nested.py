"""Nested grid scans on top of bluesky's ``list_grid_scan``, with the grid described in the start document."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
import numpy as np
from bluesky.protocols import Readable
from bluesky.run_engine import call_in_bluesky_event_loop
from bluesky.utils import MsgGenerator
from ophyd.utils import LimitError

from .._errors import BlueskyZarrError

__all__ = ["PlanArgumentError", "nested_scan", "wavelength_position_scan"]


class PlanArgumentError(BlueskyZarrError, ValueError):
    """A plan's arguments cannot make a scan; the plan raises before any run opens."""


class SetpointLimitError(PlanArgumentError, LimitError):
    """A setpoint lies outside a device's limits; the plan raises before any run opens."""


def _is_readable(obj: Any) -> bool:
    return isinstance(obj, Readable) and hasattr(obj, "name")


def _setpoints(motor: Any, spec: tuple[Any, ...]) -> np.ndarray:
    name = getattr(motor, "name", repr(motor))
    if len(spec) == 1:
        (values,) = spec
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise PlanArgumentError(f"{name}: setpoints must be a list of numbers, not {values!r}.")
        values = list(values)
    elif len(spec) == 3:
        start, stop, num = spec
        if not isinstance(num, numbers.Integral) or isinstance(num, bool) or num < 1:
            raise PlanArgumentError(f"{name}: num must be a whole number of points, 1 or more; got {num!r}.")
        for label, v in (("start", start), ("stop", stop)):
            if not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise PlanArgumentError(f"{name}: {label} must be a finite number; got {v!r}.")
        values = list(np.linspace(start, stop, int(num)))
    else:
        raise PlanArgumentError(
            f"{name}: give an axis as (motor, setpoints) or (motor, start, stop, num); "
            f"got {len(spec)} values."
        )
    if not values:
        raise PlanArgumentError(f"{name}: the list of setpoints is empty; give at least one.")
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise PlanArgumentError(f"{name}: setpoints must all be numbers; got {values!r}.") from None
    if arr.ndim != 1:
        raise PlanArgumentError(f"{name}: setpoints must be a flat list of numbers.")
    bad = arr[~np.isfinite(arr)]
    if bad.size:
        raise PlanArgumentError(f"{name}: setpoints must be finite numbers; {bad.tolist()} are not.")
    return arr


def _limits(motor: Any) -> tuple[float, float] | None:
    limits = getattr(motor, "limits", None)
    if limits is None:
        return None
    low, high = (float(v) for v in limits)
    if low == high == 0 or low >= high:  # ophyd's way of saying "no limits"
        return None
    return low, high


def _readback_key(motor: Any) -> str:
    fields = getattr(motor, "hints", {}).get("fields") or []
    if fields:
        return str(fields[0])
    return str(motor.name)


def _units(motor: Any, key: str) -> str:
    try:
        description = motor.describe()
        if inspect.isawaitable(description):  # an ophyd-async device: describe() is a coroutine
            description = call_in_bluesky_event_loop(description)
        return str(description[key].get("units") or "")
    except (KeyError, AttributeError, TypeError):
        return ""


def _baseline(devices: Sequence[Any]) -> list[Any]:
    signals: list[Any] = []
    for device in devices:
        if hasattr(device, "baseline_signals"):
            signals.extend(device.baseline_signals())
        else:
            signals.extend(getattr(device, attr) for attr in getattr(device, "configuration_attrs", ()))
    unique: dict[int, Any] = {}
    for s in signals:
        unique.setdefault(id(s), s)
    return list(unique.values())


def _check_unique(objs: Sequence[Any], what: str) -> None:
    seen: dict[int, Any] = {}
    names: set[str] = set()
    for obj in objs:
        name = getattr(obj, "name", repr(obj))
        if id(obj) in seen or name in names:
            raise PlanArgumentError(f"{name} is given twice among the {what}; give each device once.")
        seen[id(obj)] = obj
        names.add(name)


def nested_scan(
    detectors: Sequence[Any],
    *axes: tuple[Any, ...],
    dims: Sequence[str] | None = None,
    snake: bool = False,
    settle_time: float = 0.0,
    baseline: Sequence[Any] | None = None,
    md: Mapping[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Scan any number of axes in nested loops (the first outermost) and read ``detectors`` at every point.

    Built on :func:`bluesky.plans.list_grid_scan` (so ``scan_nd`` semantics and a checkpoint per
    point); every argument is checked first, so a bad one raises here and no run opens.

    Parameters
    ----------
    detectors
        Readable devices, read at every point (after the motors have settled).
    *axes
        One tuple per axis, outer first: ``(motor, setpoints)`` or ``(motor, start, stop, num)``.
    dims
        Dimension names, one per axis; default: each motor's name.
    snake
        Run every inner axis back and forth instead of always in the same direction.
    settle_time
        Extra wait (s) after the motors arrive and before the detectors are triggered.
    baseline
        Devices or signals read before and after the scan into the ``baseline`` stream; default:
        each device's ``baseline_signals()`` (or its configuration signals).
    md
        Extra metadata for the start document.

    Returns
    -------
    generator
        The plan; run it with ``RE(nested_scan(...))``.

    Raises
    ------
    PlanArgumentError
        Empty or non-finite setpoints, a duplicate device, a detector that is not readable, a
        negative settle time, wrong ``dims``.
    SetpointLimitError
        A setpoint outside a motor's limits (also an :class:`ophyd.utils.LimitError`).
    """
    detectors = list(detectors)
    if not axes:
        raise PlanArgumentError(
            "nested_scan needs at least one axis: (motor, setpoints) or (motor, start, stop, num)."
        )
    for det in detectors:
        if not _is_readable(det):
            raise PlanArgumentError(
                f"{det!r} is not a readable device (it has no read()/describe()); it cannot be a detector."
            )
    if not isinstance(settle_time, numbers.Real) or not math.isfinite(settle_time) or settle_time < 0:
        raise PlanArgumentError(
            f"settle_time must be a finite number of seconds, 0 or more; got {settle_time!r}."
        )

    motors: list[Any] = []
    setpoints: list[np.ndarray] = []
    for axis in axes:
        if not isinstance(axis, tuple | list) or len(axis) < 2:
            raise PlanArgumentError(
                f"give each axis as (motor, setpoints) or (motor, start, stop, num); got {axis!r}."
            )
        motor, *spec = axis
        if not hasattr(motor, "set") or not _is_readable(motor):
            raise PlanArgumentError(f"{motor!r} cannot be scanned: it needs set(), read() and describe().")
        values = _setpoints(motor, tuple(spec))
        limits = _limits(motor)
        if limits is not None:
            outside = values[(values < limits[0]) | (values > limits[1])]
            if outside.size:
                raise SetpointLimitError(
                    f"{motor.name}: setpoints {outside.tolist()} are outside the limits "
                    f"[{limits[0]}, {limits[1]}]; "
                    "choose setpoints inside them."
                )
        motors.append(motor)
        setpoints.append(values)
    _check_unique(motors, "motors")
    _check_unique(detectors + motors, "detectors and motors")

    names = [m.name for m in motors] if dims is None else list(dims)
    if (
        len(names) != len(motors)
        or len(set(names)) != len(names)
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise PlanArgumentError(
            f"dims must be {len(motors)} distinct, non-empty names, one per axis; got {dims!r}."
        )

    readbacks = [_readback_key(m) for m in motors]
    snaking = [False] + [bool(snake)] * (len(motors) - 1)
    grid = {
        "dims": names,
        "setpoints": {n: v.tolist() for n, v in zip(names, setpoints, strict=True)},
        "units": {n: _units(m, key) for n, m, key in zip(names, motors, readbacks, strict=True)},
        "readbacks": {n: [key] for n, key in zip(names, readbacks, strict=True)},
    }
    _md: dict[str, Any] = {
        "plan_name": "nested_scan",
        "shape": [len(v) for v in setpoints],
        "extents": [[float(v.min()), float(v.max())] for v in setpoints],
        "snaking": snaking,
        "grid": grid,
        "hints": {"dimensions": [([key], "primary") for key in readbacks], "gridding": "rectilinear"},
    }
    _md.update(md or {})

    # scan_nd compares this signature with its own, annotations included, so none are given.
    def per_step(detectors, step, pos_cache):
        yield from bps.move_per_step(step, pos_cache)
        if settle_time:
            yield from bps.sleep(settle_time)
        yield from bps.trigger_and_read(list(detectors) + list(step.keys()))

    args: list[Any] = []
    for motor, values in zip(motors, setpoints, strict=True):
        args.extend([motor, values.tolist()])
    plan = bp.list_grid_scan(detectors, *args, snake_axes=bool(snake), per_step=per_step, md=_md)
    baseline_devices = _baseline(detectors + motors) if baseline is None else list(baseline)
    if baseline_devices:
        plan = bpp.baseline_wrapper(plan, baseline_devices)
    return plan


def wavelength_position_scan(
    detectors: Sequence[Any],
    laser: Any,
    wavelengths: Sequence[float] | tuple[float, float, int],
    stage: Any,
    positions: Sequence[float] | tuple[float, float, int],
    *,
    snake: bool = False,
    settle_time: float = 0.0,
    baseline: Sequence[Any] | None = None,
    md: Mapping[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Tune the laser over ``wavelengths`` (outer loop) and move the stage over ``positions`` (inner loop).

    At every point the ``detectors`` (a camera, a power meter) are triggered and read. The grid
    dims are ``("wavelength", "position")``; opened with :func:`bluesky_zarr.open_run` the camera
    data has dims ``(wavelength, position, y, x)``.

    Parameters
    ----------
    detectors
        Readable devices read at every point.
    laser, stage
        The wavelength axis (nm) and the position axis (mm).
    wavelengths, positions
        Setpoints: a list, or a ``(start, stop, num)`` tuple.
    snake
        Move the stage back and forth instead of returning it at every wavelength.
    settle_time
        Extra wait (s) after each move, before the detectors are triggered.
    baseline
        What goes to the ``baseline`` stream; default: laser power and shutter, stage limits,
        camera settings.
    md
        Extra metadata for the start document.

    Returns
    -------
    generator
        The plan.

    Raises
    ------
    PlanArgumentError, SetpointLimitError
        As :func:`nested_scan`, before any run opens.
    """

    def axis(motor: Any, spec: Any) -> tuple[Any, ...]:
        if isinstance(spec, tuple) and len(spec) == 3 and isinstance(spec[2], numbers.Integral):
            return (motor, *spec)
        return (motor, spec)

    _md = {"plan_name": "wavelength_position_scan"}
    _md.update(md or {})
    return nested_scan(
        detectors,
        axis(laser, wavelengths),
        axis(stage, positions),
        dims=["wavelength", "position"],
        snake=snake,
        settle_time=settle_time,
        baseline=baseline,
        md=_md,
    )

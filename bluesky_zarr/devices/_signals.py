"""Signals that describe themselves fully: dtype, ``dtype_numpy``, shape, dims, units and limits.

One mixin serves the soft signals of the simulated devices and the Channel Access signals of the
EPICS devices, so both kinds give identical ``describe()`` output for the same component.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from ophyd import EpicsSignal, EpicsSignalRO, Signal

from ._errors import InvalidSettingError

__all__ = ["DescribedEpicsSignal", "DescribedEpicsSignalRO", "DescribedSignal", "non_negative", "positive"]


def positive(value: Any) -> str | None:
    """Validator: a finite number greater than zero."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        return "must be a finite number greater than 0"
    return None


def non_negative(value: Any) -> str | None:
    """Validator: a finite number, zero or more."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        return "must be a finite number of 0 or more"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


class _Described:
    """Adds units, dims, ``dtype_numpy``, limits and a value check to an ophyd signal."""

    name: str
    parent: Any

    def __init__(
        self,
        *args: Any,
        units: str | None = None,
        dims: tuple[str, ...] | None = None,
        dtype_numpy: str | None = None,
        limit_attrs: tuple[str, str] | None = None,
        validator: Callable[[Any], str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        self._units = units
        self._dims = dims
        self._dtype_numpy = dtype_numpy
        self._limit_attrs = limit_attrs
        self._validator = validator
        super().__init__(*args, **kwargs)

    def validate(self, value: Any) -> None:
        """Raise :class:`InvalidSettingError` if ``value`` is not one this signal can take."""
        if self._validator is None:
            return
        problem = self._validator(value)
        if problem is not None:
            raise InvalidSettingError(f"{self.name}: {value!r} is not a valid setting; it {problem}.")

    def set(self, value: Any, **kwargs: Any) -> Any:
        self.validate(value)
        return super().set(value, **kwargs)  # type: ignore[misc]

    def put(self, value: Any, **kwargs: Any) -> None:
        self.validate(value)
        super().put(value, **kwargs)  # type: ignore[misc]

    def _current_limits(self) -> tuple[float, float] | None:
        if self._limit_attrs is None or self.parent is None:
            return None
        low, high = (getattr(self.parent, attr).get() for attr in self._limit_attrs)
        return float(low), float(high)

    def describe(self) -> dict[str, dict[str, Any]]:
        desc = super().describe()  # type: ignore[misc]
        key = desc[self.name]
        for stale in ("lower_ctrl_limit", "upper_ctrl_limit", "enum_strs"):
            key.pop(stale, None)
        if self._dtype_numpy is not None:
            key["dtype_numpy"] = self._dtype_numpy
            key["dtype"] = _json_dtype(self._dtype_numpy, key["shape"])
        if self._dims is not None:
            key["dims"] = list(self._dims)
        if self._units is not None:
            key["units"] = self._units
        elif not key.get("units"):
            key.pop("units", None)
        limits = self._current_limits()
        if limits is not None:
            key["limits"] = {"control": {"low": limits[0], "high": limits[1]}}
        return desc  # type: ignore[no-any-return]


def _json_dtype(dtype_numpy: str, shape: list[int]) -> str:
    if shape:
        return "array"
    kind = np.dtype(dtype_numpy).kind
    if kind in "iu":
        return "integer"
    if kind == "b":
        return "boolean"
    if kind in "US":
        return "string"
    return "number"


class DescribedSignal(_Described, Signal):
    """A soft signal with full metadata (the simulated devices' components).

    Keyword arguments beyond :class:`ophyd.Signal`'s: ``units``, ``dims``, ``dtype_numpy``,
    ``limit_attrs`` (two sibling signals holding the low and high limit) and ``validator``
    (returns a reason string when a value is refused, else ``None``).
    """


class DescribedEpicsSignal(_Described, EpicsSignal):
    """A read-write Channel Access signal with the same metadata as :class:`DescribedSignal`."""


class DescribedEpicsSignalRO(_Described, EpicsSignalRO):
    """A read-only Channel Access signal with the same metadata as :class:`DescribedSignal`."""

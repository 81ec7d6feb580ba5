"""Rows of a stream gathered as plain lists, and turned into Arrow record batches.

Rows are gathered as plain Python lists (a scalar event costs a few list appends) and turned
into an Arrow record batch with one vectorised conversion per column when a batch is written.
A reading that does not convert costs its own row, never its batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from ..._documents import Event, EventPage
from ..._errors import DocumentError
from ...layout import lossless_cast
from ._layout import Column, GridColumns, TableLayout

__all__ = ["Rows", "record_batch"]

_MISSING = object()


class Rows:
    """The rows of one stream not yet written, column by column, as Python lists."""

    def __init__(self, layout: TableLayout) -> None:
        self.time: list[Any] = []
        self.seq_num: list[Any] = []
        self.data: dict[str, list[Any]] = {c.data_key: [] for c in layout.columns}
        self.missing: set[str] = set()
        """keys with rows that lack them (events of another descriptor of the stream)"""
        self.n = 0

    def add_keys(self, layout: TableLayout) -> None:
        for column in layout.columns:
            if column.data_key not in self.data:
                self.data[column.data_key] = [None] * self.n
                if self.n:
                    self.missing.add(column.data_key)

    def add_event(self, event: Event, where: str) -> None:
        data = event["data"]
        columns = self.data
        if data.keys() != columns.keys():
            self._check_keys(data, where)
            for key, values in columns.items():
                value = data.get(key, _MISSING)
                if value is _MISSING:
                    self.missing.add(key)
                    value = None
                values.append(value)
        else:
            for key, values in columns.items():
                values.append(data[key])
        self.time.append(event["time"])
        self.seq_num.append(event["seq_num"])
        self.n += 1

    def add_page(self, page: EventPage, where: str) -> None:
        n = len(page["seq_num"])
        data = page["data"]
        if len(page["time"]) != n or any(len(values) != n for values in data.values()):
            raise DocumentError(
                f"{where}: an event page whose fields hold different numbers of events; fix its producer"
            )
        if data.keys() != self.data.keys():
            self._check_keys(data, where)
        for key, column in self.data.items():
            values: Any = data.get(key, _MISSING)
            if values is _MISSING:
                self.missing.add(key)
                column.extend([None] * n)
            elif isinstance(values, np.ndarray):
                column.extend(values.tolist() if values.ndim == 1 else list(values))
            else:
                column.extend(values)
        self.time.extend(_plain(page["time"]))
        self.seq_num.extend(_plain(page["seq_num"]))
        self.n += n

    def _check_keys(self, data: Mapping[str, Any], where: str) -> None:
        unknown = [k for k in data if k not in self.data]
        if unknown:
            raise DocumentError(
                f"{where}: event has data key {unknown[0]!r} that no descriptor of the stream declares"
            )

    def take(self) -> tuple[list[Any], list[Any], dict[str, list[Any]], set[str]]:
        taken = self.time, self.seq_num, self.data, self.missing
        self.time, self.seq_num, self.missing = [], [], set()
        self.data = {k: [] for k in taken[2]}
        self.n = 0
        return taken


def _plain(values: Any) -> Any:
    return values.tolist() if isinstance(values, np.ndarray) else values


def _mask(values: list[Any]) -> np.ndarray:
    return np.fromiter((v is None for v in values), dtype=bool, count=len(values))


def _scalar_array(values: list[Any], column: Column, where: str) -> pa.Array:
    target = column.arrow_type
    if column.dtype.kind in "SUO":
        try:
            return pa.array(values, type=target)
        except (pa.ArrowException, TypeError, ValueError):
            return pa.array([None if v is None else str(v) for v in values], type=target)
    try:
        inferred = pa.array(values, from_pandas=False)
        if inferred.type == target:
            return inferred
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    mask = _mask(values)
    present = [v for v, m in zip(values, mask, strict=True) if not m] if mask.any() else values
    if not present:  # no reading in these rows
        return pa.nulls(len(values), target)
    try:
        raw = np.asarray(present)
    except (TypeError, ValueError) as err:
        raise _bad_values(column, where, f"values that are not {column.dtype} numbers") from err
    if raw.ndim != 1:
        raise _bad_values(column, where, f"readings of shape {list(raw.shape[1:])}")
    converted = lossless_cast(raw, column.dtype)
    if converted is None:
        raise _bad_values(column, where, f"{raw.dtype} values that do not fit")
    if mask.any():
        full = np.zeros(len(values), dtype=converted.dtype)
        full[~mask] = converted
        return pa.array(full, type=target, mask=mask)
    return pa.array(converted, type=target)


def _bad_values(column: Column, where: str, what: str) -> DocumentError:
    if what.startswith("readings of shape"):
        return DocumentError(
            f"{where}: data key {column.data_key!r} has {what}, but its descriptor declares "
            f"{list(column.shape)}; fix the device's describe() or its reading"
        )
    return DocumentError(
        f"{where}: data key {column.data_key!r} holds {what} its declared dtype {column.dtype}; declare "
        "dtype_numpy in describe() to match the readings"
    )


def _tensor_array(values: list[Any], column: Column, where: str) -> pa.Array:
    n = len(values)
    mask = _mask(values) if any(v is None for v in values) else None
    present = values if mask is None else [v for v, m in zip(values, mask, strict=True) if not m]
    if not present:  # no reading in these rows (another descriptor's events, readings quarantined)
        storage_type = (
            column.arrow_type.storage_type
            if isinstance(column.arrow_type, pa.ExtensionType)
            else column.arrow_type
        )
        storage = pa.nulls(n, storage_type)
        if isinstance(column.arrow_type, pa.ExtensionType):
            return pa.ExtensionArray.from_storage(column.arrow_type, storage)
        return storage
    try:
        raw = np.asarray(present)
    except (TypeError, ValueError) as err:  # readings of different shapes
        shapes = sorted({str(list(np.shape(v))) for v in present})
        raise _bad_values(column, where, f"readings of shape {', '.join(shapes)}") from err
    if raw.shape[1:] != column.shape or raw.dtype == object:
        raise _bad_values(column, where, f"readings of shape {list(raw.shape[1:])}")
    size = math.prod(column.shape)
    if column.dtype.kind in "SUO":
        flat_values: list[Any] = [str(v) for v in raw.reshape(-1).tolist()]
        if mask is not None:
            flat_values = _spread(flat_values, mask, size, "")
        return pa.FixedSizeListArray.from_arrays(
            pa.array(flat_values, pa.string()), size, mask=_pa_mask(mask)
        )
    converted = lossless_cast(raw, column.dtype)
    if converted is None:
        raise _bad_values(column, where, f"{raw.dtype} values that do not fit")
    if mask is not None:
        full = np.zeros((n, *column.shape), dtype=converted.dtype)
        full[~mask] = converted
        converted = full
    flat = np.ascontiguousarray(converted, dtype=converted.dtype.newbyteorder("=")).reshape(-1)
    if column.dtype.kind == "b":
        return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.bool_()), size, mask=_pa_mask(mask))
    storage = pa.FixedSizeListArray.from_arrays(pa.array(flat), size, mask=_pa_mask(mask))
    return pa.ExtensionArray.from_storage(column.arrow_type, storage)


def _spread(flat: list[Any], mask: np.ndarray, size: int, fill: Any) -> list[Any]:
    out: list[Any] = []
    it = iter(range(0, len(flat), size))
    for missing in mask:
        if missing:
            out.extend([fill] * size)
        else:
            i = next(it)
            out.extend(flat[i : i + size])
    return out


def _pa_mask(mask: np.ndarray | None) -> pa.Array | None:
    return None if mask is None else pa.array(mask, pa.bool_())


def _column_array(values: list[Any], column: Column, where: str) -> pa.Array:
    if column.shape:
        return _tensor_array(values, column, where)
    return _scalar_array(values, column, where)


def record_batch(
    layout: TableLayout,
    time: list[Any],
    seq_num: list[Any],
    data: Mapping[str, list[Any]],
    where: str,
) -> tuple[pa.RecordBatch, list[DocumentError]]:
    """The rows as one record batch of the layout's schema, and the errors of rows left out.

    When a column does not convert as a whole, the rows are converted one by one: a bad
    reading costs its own row (and an error naming its ``seq_num`` and data key), not its batch.
    """
    try:
        return _batch(layout, time, seq_num, data, where), []
    except DocumentError:
        pass
    good: list[int] = []
    errors: list[DocumentError] = []
    for i in range(len(seq_num)):
        try:
            _batch(
                layout, time[i : i + 1], seq_num[i : i + 1], {k: v[i : i + 1] for k, v in data.items()}, where
            )
            good.append(i)
        except DocumentError as err:
            err.add_note(f"the event with seq_num {seq_num[i]} was left out of the table")
            errors.append(err)

    def pick(values: list[Any]) -> list[Any]:
        return [values[i] for i in good]

    batch = _batch(layout, pick(time), pick(seq_num), {k: pick(v) for k, v in data.items()}, where)
    return batch, errors


def _batch(
    layout: TableLayout, time: list[Any], seq_num: list[Any], data: Mapping[str, list[Any]], where: str
) -> pa.RecordBatch:
    try:
        arrays: list[pa.Array] = [pa.array(time, pa.float64()), pa.array(seq_num, pa.int64())]
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as err:
        raise DocumentError(f"{where}: an event's time or seq_num is not a number: {err}") from err
    if layout.grid is not None:
        arrays += _grid_arrays(layout.grid, seq_num)
    for column in layout.columns:
        arrays.append(_column_array(data[column.data_key], column, where))
    return pa.RecordBatch.from_arrays(arrays, schema=layout.schema())


def _grid_arrays(grid: GridColumns, seq_num: list[Any]) -> list[pa.Array]:
    n = len(seq_num)
    inside, index = grid.grid.indices(np.asarray(seq_num, dtype=np.int64).reshape(n))
    full = np.zeros((n, len(grid.index)), dtype=np.int64)
    full[inside] = index
    outside = ~inside
    mask = outside if outside.any() else None
    arrays = [pa.array(full[:, d], pa.int64(), mask=mask) for d in range(len(grid.index))]
    for d, (axis, name) in enumerate(zip(grid.grid.axes, grid.setpoint, strict=True)):
        if name is not None and axis.setpoints is not None:
            values = np.asarray(axis.setpoints, dtype=np.float64)[full[:, d]]
            arrays.append(pa.array(values, pa.float64(), mask=mask))
    for d, (axis, name) in enumerate(zip(grid.grid.axes, grid.offset, strict=True)):
        if name is not None and axis.offsets is not None:
            values = np.asarray(axis.offsets, dtype=np.float64)[full[:, d]]
            arrays.append(pa.array(values, pa.float64(), mask=mask))
    return arrays

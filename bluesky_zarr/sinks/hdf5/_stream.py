"""One stream group of an HDF5 file, written as events come: the carrying out of a :class:`GroupLayout`.

The order of writes keeps the group true for a SWMR reader at every flush: readings first, then
(after the file is flushed) what vouches for them. On a grid that is the ``written`` mask; in a
stream that grows along ``time`` it is ``seq_num``, which is lengthened last: its length is the
number of complete events (other datasets may be a flush ahead). Its rows are written a few
thousand at a time (and at every flush), not one dataset resize per event. Events of a grid stream that
fall outside the grid, and readings superseded by a newer one at the same point (pause/resume),
go to the 1-D ``overflow`` group below it: nothing is dropped.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from ..._encoding import attribute, to_json
from ..._errors import DocumentError
from ...layout import Grid, readings_array
from ._file import SWMRFile
from ._layout import (
    NETCDF_DIMENSION,
    OVERFLOW_GROUP,
    SEQ_NUM,
    TIME,
    WRITTEN,
    DatasetSpec,
    GroupLayout,
    overflow_layout,
)

__all__ = ["WAITING_BYTES", "WAITING_ROWS", "HDF5Stream"]

WAITING_ROWS = 4096
WAITING_BYTES = 8 * 1024**2
"""Rows of a growing stream are written once this many (or this many bytes) wait, and at each flush."""


def _storage_dtype(spec: DatasetSpec) -> Any:
    return h5py.string_dtype() if spec.dtype.kind in "SUO" else spec.dtype


def _select(values: Any, rows: Any) -> Any:
    if isinstance(values, np.ndarray):
        return values[rows]
    return [values[int(i)] for i in rows]


class HDF5Stream:
    """The group of one stream: its datasets, the ``written`` mask of a grid, and its overflow."""

    def __init__(self, file: SWMRFile, path: str, layout: GroupLayout, run: str) -> None:
        self.file = file
        self.path = path
        self.run = run
        self.layout = layout
        self.grid: Grid | None = layout.grid
        self.length = 0
        """Events in a growing stream so far."""
        self.vouched = 0
        """Events of a growing stream that ``seq_num`` vouches for."""
        self._seq_nums: list[int] = []
        """seq_nums of a growing stream not yet in ``seq_num``"""
        self._waiting: dict[str, list[tuple[int, np.ndarray]]] = {}
        """dataset -> rows of a growing stream not yet written: (offset among the waiting, values)"""
        self._waiting_rows = 0
        self._waiting_bytes = 0
        self.written = np.zeros(self.grid.shape, dtype=bool) if self.grid is not None else None
        self.written_on_disk = self.written.copy() if self.written is not None else None
        self.overflow: HDF5Stream | None = None
        self.superseded = 0
        self._create(layout)

    @property
    def where(self) -> str:
        return f"run {self.run}, stream {self.layout.name!r}"

    def _dataset(self, name: str) -> h5py.Dataset:
        return self.file.data[f"{self.path}/{name}"]

    # --- structure (SWMR off) ---------------------------------------------------------------------

    def _create(self, layout: GroupLayout, known: GroupLayout | None = None) -> None:
        """Create what is new in ``layout``, widen what grew, describe again what changed."""
        h5 = self.file.structure()
        group = h5.require_group(self.path)
        self.layout = layout
        for name, spec in layout.datasets.items():
            old = known.datasets.get(name) if known is not None else None
            if old is None:
                self._new_dataset(group, spec)
            elif spec.dtype != old.dtype:
                self._widen(group, spec)
            else:
                if spec.values is not None and (
                    old.values is None or not np.array_equal(spec.values, old.values)
                ):
                    group[name][...] = spec.values
                if spec.attrs != old.attrs:
                    self._describe(group[name], spec)
        self._attach_scales(group)
        self.write_attrs()

    def _new_dataset(self, group: h5py.Group, spec: DatasetSpec, length: int | None = None) -> h5py.Dataset:
        shape = spec.shape if length is None else (length, *spec.shape[1:])
        options: dict[str, Any] = {"shape": shape, "dtype": _storage_dtype(spec)}
        if spec.role != "dimension":
            options["maxshape"] = spec.maxshape
            if spec.chunks is not None:
                options["chunks"] = spec.chunks
                options.update(spec.filters)
            if spec.dtype.kind not in "SUO":
                options["fillvalue"] = spec.fill_value
        dataset = group.create_dataset(spec.name, **options)
        if spec.values is not None:
            dataset[...] = spec.values
        self._describe(dataset, spec)
        return dataset

    def _describe(self, dataset: h5py.Dataset, spec: DatasetSpec) -> None:
        for key in (
            set(dataset.attrs) - set(spec.attrs) - {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST"}
        ):
            del dataset.attrs[key]
        for key, value in spec.attrs.items():
            dataset.attrs[key] = attribute(value)

    def _attach_scales(self, group: h5py.Group) -> None:
        """Make each dimension's scale, and attach it to every dimension that has none yet."""
        for dim, name in self.layout.scales.items():
            scale = group[name]
            if not scale.is_scale:
                spec = self.layout.datasets[name]
                scale.make_scale(
                    f"{NETCDF_DIMENSION}{spec.shape[0]:10d}" if spec.role == "dimension" else dim
                )
        for name, spec in self.layout.datasets.items():
            if self.layout.scales.get(spec.dims[0]) == name and len(spec.dims) == 1:
                continue  # a scale of itself
            dataset = group[name]
            for i, dim in enumerate(spec.dims):
                if len(dataset.dims[i]) == 0:
                    dataset.dims[i].attach_scale(group[self.layout.scales[dim]])

    def _widen(self, group: h5py.Group, spec: DatasetSpec) -> None:
        """Store a dataset in the wider dtype of ``spec``: what it holds is written again, cast
        (points that got no reading keep the new fill value)."""
        old = group[spec.name]
        data = old[...]
        if self.written is not None:
            holds = self.written.reshape(self.written.shape + (1,) * len(spec.reading_shape))
        else:
            holds = (np.arange(len(data)) < self.length).reshape((-1,) + (1,) * len(spec.reading_shape))
        wide = np.where(holds, data.astype(spec.dtype), np.asarray(spec.fill_value, dtype=spec.dtype))
        for dim in old.dims:  # else the scales keep references to a dataset that is gone
            for scale in dim.values():
                dim.detach_scale(scale)
        del group[spec.name]
        dataset = self._new_dataset(group, spec, length=len(data) if spec.growing else None)
        dataset[...] = wide

    def update_layout(self, layout: GroupLayout) -> None:
        self.stage()  # the rows that wait, in the datasets they were read for
        known, self.grid = self.layout, layout.grid
        self._create(layout, known)
        if self.overflow is not None:
            self.overflow.update_layout(overflow_layout(layout))

    def write_attrs(self) -> None:
        group = self.file.structure()[self.path]
        for key, value in {**self.attrs(), **self.layout.nexus}.items():
            group.attrs[key] = attribute(value)

    def attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "stream": self.layout.name,
            "descriptors": to_json(list(self.layout.descriptors)),
        }
        if self.grid is not None:
            attrs["grid"] = {"dims": list(self.grid.dims), "shape": list(self.grid.shape),
                             "snaking": list(self.grid.snaking)}  # fmt: skip
            if self.grid.relative:
                attrs["grid"]["origin"] = {a.dim: a.origin for a in self.grid.axes if a.offsets is not None}
            attrs["overflow"] = {
                "events": self.overflow.length if self.overflow is not None else 0,
                "superseded": self.superseded,
            }
        return attrs

    # --- events (SWMR on) -------------------------------------------------------------------------

    def write_page(self, page: Any) -> None:
        seq_nums = np.asarray(page["seq_num"], dtype=np.int64)
        n = len(seq_nums)
        if self.grid is None:
            self._append(page, n)
            return
        assert self.written is not None
        inside, index = self.grid.indices(seq_nums)
        if not inside.all():
            rows = np.flatnonzero(~inside)
            self._overflow_stream().write_page(_subpage(page, rows))
        for i, row in enumerate(np.flatnonzero(inside)):
            point = tuple(int(j) for j in index[i])
            if self.written[point]:
                self._supersede(point)
            self._put(point, page, int(row))
            self.written[point] = True

    def _values(self, page: Any, rows: Any, n: int) -> dict[str, np.ndarray]:
        """Dataset name -> the readings of ``rows`` of the page."""
        values: dict[str, np.ndarray] = {}
        for key, raw in page["data"].items():
            name = self.layout.keys.get(key)
            if name is None:
                raise DocumentError(
                    f"{self.where}: event has data key {key!r} that no descriptor of the stream declares"
                )
            spec = self.layout.datasets[name]
            values[name] = readings_array(
                key, spec.dtype, spec.reading_shape, _select(raw, rows), n, self.where
            )
        values[TIME] = np.asarray(_select(page["time"], rows), dtype="float64")
        values[SEQ_NUM] = np.asarray(_select(page["seq_num"], rows), dtype="int64")
        return values

    def _put(self, point: tuple[int, ...], page: Any, row: int) -> None:
        for name, value in self._values(page, [row], 1).items():
            self._dataset(name)[point] = value[0]

    def _append(self, page: Any, n: int) -> None:
        """Rows of a growing stream wait in memory, and are written a few thousand at a time."""
        for name, values in self._values(page, range(n), n).items():
            self._waiting.setdefault(name, []).append((self._waiting_rows, values))
            self._waiting_bytes += values.nbytes
        self._waiting_rows += n
        if self._waiting_rows >= WAITING_ROWS or self._waiting_bytes >= WAITING_BYTES:
            self.stage()

    def stage(self) -> None:
        """Write the rows that wait (each dataset lengthened, ``seq_num`` kept for :meth:`vouch`)."""
        if self._waiting_rows:
            waiting, n = self._waiting, self._waiting_rows
            self._waiting, self._waiting_rows, self._waiting_bytes = {}, 0, 0
            start, self.length = self.length, self.length + n
            for name, spec in self.layout.datasets.items():
                if not spec.growing or name == SEQ_NUM:
                    continue
                dataset = self._dataset(name)
                dataset.resize(self.length, axis=0)
                for offset, values in waiting.get(name, []):
                    dataset[start + offset : start + offset + len(values)] = values
            self._seq_nums += [int(v) for _, values in waiting[SEQ_NUM] for v in values]
        if self.overflow is not None:
            self.overflow.stage()

    def _overflow_stream(self) -> HDF5Stream:
        if self.overflow is None:
            self.overflow = HDF5Stream(
                self.file, f"{self.path}/{OVERFLOW_GROUP}", overflow_layout(self.layout), self.run
            )
        return self.overflow

    def _supersede(self, point: tuple[int, ...]) -> None:
        """Move the event stored at ``point`` to the overflow before a newer one takes its place."""
        old = {
            "data": {key: [self._dataset(name)[point]] for key, name in self.layout.keys.items()},
            "time": [float(self._dataset(TIME)[point])],
            "seq_num": [int(self._dataset(SEQ_NUM)[point])],
        }
        self._overflow_stream().write_page(old)
        self.superseded += 1

    # --- making it visible ------------------------------------------------------------------------

    def vouch(self) -> None:
        """After the file was flushed: say which events it holds (``written``, or ``seq_num``'s length)."""
        if self.grid is None:
            if self._seq_nums:
                dataset = self._dataset(SEQ_NUM)
                dataset.resize(self.length, axis=0)
                dataset[self.vouched : self.length] = self._seq_nums
                self.vouched, self._seq_nums = self.length, []
        else:
            assert self.written is not None and self.written_on_disk is not None
            if (self.written != self.written_on_disk).any():
                self._dataset(WRITTEN)[...] = self.written
                self.written_on_disk = self.written.copy()
        if self.overflow is not None:
            self.overflow.vouch()


def _subpage(page: Any, rows: np.ndarray) -> dict[str, Any]:
    return {
        "seq_num": _select(page["seq_num"], rows),
        "time": _select(page["time"], rows),
        "data": {k: _select(v, rows) for k, v in page["data"].items()},
    }

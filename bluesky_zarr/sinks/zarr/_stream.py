"""One stream group of a Zarr store, written as events come: the carrying out of a :class:`StreamLayout`.

The order of writes keeps the group true at every moment: data chunks first, then the array
shapes that make them visible, then the ``written`` mask that vouches for them, then attributes.
Events of a grid stream that fall outside the grid, and readings superseded by a newer one at
the same point (pause/resume), go to the 1-D ``overflow`` group below it: nothing is dropped. A
1-D stream keeps every row of a rewound plan, and its ``superseded`` attribute lists the seq_nums
that a later row took again (of the rows with one of them, the last is the one that counts).
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np

from ..._encoding import to_json
from ..._errors import DocumentError
from ...layout import Grid, readings_array
from ...storage import Storage
from .._run import Retakes
from ._array_writer import ArrayWriter
from ._layout import OVERFLOW_GROUP, SEQ_NUM, TIME, WRITTEN, ArraySpec, StreamLayout, overflow_layout
from ._metadata import Nodes, array_document, group_document

__all__ = ["Readings", "ZarrStream"]


class Readings(TypedDict):
    """What a stream writes of an event page (an :class:`~event_model.documents.EventPage` is one)."""

    data: dict[str, Any]
    time: Any
    seq_num: Any


def _readings(spec: ArraySpec, raw: Any, n: int, where: str) -> np.ndarray:
    """The readings of one data key in an event page as an ``(n, *reading_shape)`` array."""
    return readings_array(spec.data_key, spec.dtype, spec.reading_shape, raw, n, where)


class ZarrStream:
    """The group of one stream: its arrays, the ``written`` mask of a grid, and its overflow."""

    def __init__(self, storage: Storage, nodes: Nodes, path: str, layout: StreamLayout, run: str) -> None:
        self.storage = storage
        self.nodes = nodes
        self.path = path
        self.run = run
        self.layout = layout
        self.arrays: dict[str, ArrayWriter] = {}
        self.length = 0
        """Events in a growing stream so far (rows handed to the arrays)."""
        self.visible_length = 0
        """Events a reader sees: the length in the arrays' metadata."""
        self.grid: Grid | None = layout.grid
        self.written = np.zeros(self.grid.shape, dtype=bool) if self.grid is not None else None
        """Grid points that received an event."""
        self.written_on_disk = self.written.copy() if self.written is not None else None
        """The ``written`` mask as stored: points whose every array is on disk."""
        self.overflow: ZarrStream | None = None
        self.superseded = 0
        """grid: readings moved to the overflow by a newer one at the same point"""
        self.retakes = (
            Retakes(layout.name) if self.grid is None and not path.endswith(f"/{OVERFLOW_GROUP}") else None
        )
        """1-D: the seq_nums a later row took again (an overflow group's repeat by design)"""
        self._attrs_dirty = True
        self._create_arrays(layout)

    # --- layout -----------------------------------------------------------------------------------

    def _create_arrays(self, layout: StreamLayout) -> None:
        """Create the arrays that are new, widen those whose dtype grew, describe again those whose
        attributes changed; rewrite a setpoint coordinate whose values or attributes changed (a
        relative grid placed where its motors started): its values first, then its metadata."""
        self.layout = layout
        for name, spec in layout.arrays.items():
            known = self.arrays.get(name)
            if known is not None and not _changed(known.spec, spec):
                if spec.dtype != known.spec.dtype:
                    self._widen(name, spec)
                elif spec.attrs != known.spec.attrs:  # e.g. the detector files it was read from
                    known.spec = spec
                    self.nodes.put(f"{self.path}/{name}", array_document(spec, self._shape(spec)))
                continue
            key = f"{self.path}/{name}"
            writer = ArrayWriter(self.storage, key, spec)
            if spec.values is not None:
                writer.write(np.arange(len(spec.values))[:, np.newaxis], spec.values)
                writer.flush()
            self.nodes.put(key, array_document(spec, self._shape(spec)))
            self.arrays[name] = writer
        self._attrs_dirty = True

    def _widen(self, name: str, spec: ArraySpec) -> None:
        """Store an array in the wider dtype of ``spec``: everything written so far is rewritten.

        The widened array is written beside the old one and moved into its place, so a reader
        sees the old array or the new one (or, until the next commit of the root, none), never
        chunks of one dtype described as the other.
        """
        key = f"{self.path}/{name}"
        staging, retired = f"{self.path}/.{name}.widening", f"{self.path}/.{name}.retired"
        for leftover in (staging, retired):
            self.storage.delete(leftover)
        writer = self.arrays[name].widened(spec, staging, lambda block: self._holds(spec, block))
        self.nodes.forget(key)  # readers of the consolidated root never see the new chunks as the old dtype
        if self.storage.exists(staging):  # else nothing was on disk yet: nothing to move
            self.storage.rename(key, retired)
            self.storage.rename(staging, key)
        writer.move(key)
        self.nodes.put(key, array_document(spec, self._shape(spec)))
        self.storage.delete(retired)
        self.arrays[name] = writer

    def _holds(self, spec: ArraySpec, block: tuple[int, ...]) -> np.ndarray:
        """Which points of a block of an array of ``spec`` hold readings."""
        block_shape = spec.chunks[: spec.event_ndim]
        first = [b * n for b, n in zip(block, block_shape, strict=True)]
        if self.grid is None:
            return np.arange(first[0], first[0] + block_shape[0]) < self.length
        assert self.written is not None
        holds = np.zeros(block_shape, dtype=bool)
        part = self.written[tuple(slice(f, f + n) for f, n in zip(first, block_shape, strict=True))]
        holds[tuple(slice(0, n) for n in part.shape)] = part
        return holds

    def _shape(self, spec: ArraySpec) -> tuple[int, ...]:
        """An array's shape now: a grid's (or a setpoint's) in full, a growing stream's as visible."""
        if self.grid is not None or spec.role == "setpoint":
            return spec.shape
        return (self.visible_length, *spec.reading_shape)

    def update_layout(self, layout: StreamLayout) -> None:
        self.grid = layout.grid
        self._create_arrays(layout)
        if self.overflow is not None:
            self.overflow.update_layout(overflow_layout(layout))

    # --- events -----------------------------------------------------------------------------------

    def write_page(self, page: Readings) -> None:
        seq_nums = np.asarray(page["seq_num"], dtype=np.int64)
        if self.grid is None:
            index = np.arange(self.length, self.length + len(seq_nums), dtype=np.int64)[:, np.newaxis]
            self._write_rows(index, page, slice(None))
            self.length += len(seq_nums)
            if self.retakes is not None and self.retakes.took(seq_nums.tolist()):
                self._attrs_dirty = True  # its superseded attribute lists them
            return
        assert self.written is not None
        inside, index = self.grid.indices(seq_nums)
        if not inside.all():
            self._to_overflow(page, ~inside)
        rows = np.flatnonzero(inside)
        if len(rows) == 0:
            return
        flat = np.ravel_multi_index(tuple(index.T), self.grid.shape).tolist()
        if self.written[tuple(index.T)].any() or len(set(flat)) != len(flat):
            for i, row in enumerate(rows):  # points seen before (pause/resume): one at a time
                point = tuple(int(j) for j in index[i])
                if self.written[point]:
                    self._supersede(point)
                self._write_rows(index[i : i + 1], page, np.asarray([row]))
                self.written[point] = True
            return
        # every row: a slice, so that the readings are a view, not a copy (of a page of frames)
        self._write_rows(index, page, slice(None) if len(rows) == len(seq_nums) else rows)
        self.written[tuple(index.T)] = True

    def _write_rows(self, index: np.ndarray, page: Readings, rows: Any) -> None:
        n = len(index)
        where = f"run {self.run}, stream {self.layout.name!r}"
        data = page["data"]
        for key, raw in data.items():
            name = self.layout.keys.get(key)
            if name is None:
                raise DocumentError(
                    f"{where}: event has data key {key!r} that no descriptor of the stream declares"
                )
            spec = self.layout.arrays[name]
            self.arrays[name].write(index, _readings(spec, _select(raw, rows), n, where))
        self.arrays[TIME].write(index, np.asarray(_select(page["time"], rows), dtype="float64"))
        self.arrays[SEQ_NUM].write(index, np.asarray(_select(page["seq_num"], rows), dtype="int64"))

    def _overflow_stream(self) -> ZarrStream:
        if self.overflow is None:
            self.overflow = ZarrStream(
                self.storage,
                self.nodes,
                f"{self.path}/{OVERFLOW_GROUP}",
                overflow_layout(self.layout),
                self.run,
            )
            self._attrs_dirty = True
        return self.overflow

    def _to_overflow(self, page: Readings, rows: np.ndarray) -> None:
        picked = np.flatnonzero(rows)
        subpage: Readings = {
            "seq_num": _select(page["seq_num"], picked),
            "time": _select(page["time"], picked),
            "data": {k: _select(v, picked) for k, v in page["data"].items()},
        }
        self._overflow_stream().write_page(subpage)
        self._attrs_dirty = True

    def _supersede(self, point: tuple[int, ...]) -> None:
        """Move the event stored at ``point`` to the overflow before a newer one takes its place."""
        old: Readings = {
            "data": {key: [self.arrays[name].read(point)] for key, name in self.layout.keys.items()},
            "time": [float(self.arrays[TIME].read(point))],
            "seq_num": [int(self.arrays[SEQ_NUM].read(point))],
        }
        self._overflow_stream().write_page(old)
        self.superseded += 1

    # --- making it visible ------------------------------------------------------------------------

    def flush(self, *, final: bool = False) -> None:
        """Data first, then the shapes that show it, then the mask that vouches for it, then attrs."""
        for name, writer in self.arrays.items():
            if name != WRITTEN:
                writer.flush(final=final)
        if self.grid is None:
            on_disk = [n for w in self.arrays.values() if (n := w.written_length()) is not None]
            length = min([self.length, *on_disk])
            if length != self.visible_length:
                self.visible_length = length
                for name, writer in self.arrays.items():
                    self.nodes.put(
                        f"{self.path}/{name}", array_document(writer.spec, self._shape(writer.spec))
                    )
        if WRITTEN in self.arrays:
            self._flush_written(final)
        if self.overflow is not None:
            self.overflow.flush(final=final)
        if self._attrs_dirty:
            self.nodes.put(self.path, group_document(self.attrs()))
            self._attrs_dirty = False

    def _flush_written(self, final: bool) -> None:
        """Store the ``written`` mask: points that got an event, less those still held in memory."""
        assert self.written is not None and self.written_on_disk is not None
        mask = self.written.copy()
        for name, writer in self.arrays.items():
            if name != WRITTEN:
                writer.unwritten(mask)
        changed = mask != self.written_on_disk
        if changed.any():
            self.arrays[WRITTEN].write(np.argwhere(changed), mask[changed])
            self.written_on_disk = mask
        self.arrays[WRITTEN].flush(final=final)

    def attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "stream": self.layout.name,
            "descriptors": to_json(list(self.layout.descriptors)),
        }
        if self.grid is not None:
            attrs["grid"] = {"dims": list(self.grid.dims), "shape": list(self.grid.shape),
                             "snaking": list(self.grid.snaking)}  # fmt: skip
            if self.grid.relative:  # where each relative dimension's motor started (None: unknown)
                attrs["grid"]["origin"] = {a.dim: a.origin for a in self.grid.axes if a.offsets is not None}
            attrs["overflow"] = {
                "events": self.overflow.length if self.overflow is not None else 0,
                "superseded": self.superseded,
            }
        if self.retakes is not None and self.retakes.seq_nums:
            attrs["superseded"] = sorted(self.retakes.seq_nums)
        return attrs


def _changed(old: ArraySpec, new: ArraySpec) -> bool:
    """Whether a setpoint coordinate must be written again (its values known from the documents)."""
    if new.role != "setpoint" or new.values is None or old.values is None:
        return False
    return new.attrs != old.attrs or not np.array_equal(new.values, old.values)


def _select(values: Any, rows: Any) -> Any:
    if isinstance(rows, slice):
        return values[rows] if isinstance(values, np.ndarray) else list(values)[rows]
    if isinstance(values, np.ndarray):
        return values[rows]
    return [values[int(i)] for i in rows]

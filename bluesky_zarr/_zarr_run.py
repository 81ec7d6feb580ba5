"""One run into one Zarr v3 store: the sink that carries out a :class:`StreamLayout`.

Everything here runs in the writer's own thread, never in the RunEngine's. The order of writes
keeps the store true at every moment: data chunks first, then the array shapes that make them
visible, then the ``written`` mask that vouches for them, then attributes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import event_model
import numpy as np
import zarr
from zarr.errors import ZarrUserWarning

from ._array_writer import ArrayWriter, array_metadata
from ._chunking import ZarrOptions
from ._encoding import to_json
from ._errors import DocumentError
from ._layout import (
    OVERFLOW_GROUP,
    SEQ_NUM,
    TIME,
    WRITTEN,
    ArraySpec,
    Grid,
    StreamLayout,
    grid_from_start,
    overflow_layout,
    stream_layout,
)
from ._storage import LocalStorage
from ._zarr_adapter import group_metadata_json

__all__ = ["ZarrRun"]

FORMAT_VERSION = 1


def _group_json(attrs: Mapping[str, Any]) -> bytes:
    return group_metadata_json(attrs)


def _readings(spec: ArraySpec, raw: Any, n: int, where: str) -> np.ndarray:
    """The readings of one data key in an event page as an ``(n, *reading_shape)`` array."""
    if spec.dtype.kind in "SUO":
        values = np.empty(n, dtype=object)
        values[:] = [str(v) for v in raw]
        return values
    values = np.asarray(raw)
    expected = (n, *spec.reading_shape)
    if values.shape != expected:
        raise DocumentError(
            f"{where}: data key {spec.data_key!r} has readings of shape {list(values.shape[1:])}, but its "
            f"descriptor declares {list(spec.reading_shape)}; fix the device's describe() or its reading"
        )
    if values.dtype == spec.dtype:
        return values
    if np.can_cast(values.dtype, spec.dtype, casting="same_kind"):
        return values.astype(spec.dtype)
    cast = values.astype(spec.dtype, casting="unsafe")
    if not np.array_equal(cast.astype(values.dtype), values, equal_nan=values.dtype.kind == "f"):
        raise DocumentError(
            f"{where}: data key {spec.data_key!r} holds {values.dtype} values that do not fit its declared "
            f"dtype {spec.dtype}; declare dtype_numpy in describe() to match the readings"
        )
    return cast


class _Stream:
    """The group of one stream: its arrays, the ``written`` mask of a grid, and its overflow."""

    def __init__(self, storage: LocalStorage, path: str, layout: StreamLayout, run: str) -> None:
        self.storage = storage
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
        self.overflow: _Stream | None = None
        self.superseded = 0
        self._attrs_dirty = True
        self._create_arrays(layout)

    # --- layout -----------------------------------------------------------------------------------

    def _create_arrays(self, layout: StreamLayout) -> None:
        self.layout = layout
        for name, spec in layout.arrays.items():
            if name in self.arrays:
                continue
            key = f"{self.path}/{name}"
            shape = spec.shape if self.grid is not None or spec.role == "setpoint" else self._grown(spec)
            self.storage.put(f"{key}/zarr.json", array_metadata(spec, shape))
            writer = ArrayWriter(self.storage, key, spec)
            if spec.values is not None:
                writer.write(np.arange(len(spec.values))[:, np.newaxis], spec.values)
                writer.flush()
            self.arrays[name] = writer
        self._attrs_dirty = True

    def _grown(self, spec: ArraySpec) -> tuple[int, ...]:
        return (self.visible_length, *spec.reading_shape)

    def update_layout(self, layout: StreamLayout) -> None:
        self._create_arrays(layout)
        if self.overflow is not None:
            self.overflow.update_layout(overflow_layout(layout))

    # --- events -----------------------------------------------------------------------------------

    def write_page(self, page: Mapping[str, Any]) -> None:
        self._check_filled(page)
        seq_nums = np.asarray(page["seq_num"], dtype=np.int64)
        if self.grid is None:
            index = np.arange(self.length, self.length + len(seq_nums), dtype=np.int64)[:, np.newaxis]
            self._write_rows(index, page, slice(None))
            self.length += len(seq_nums)
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
        self._write_rows(index, page, rows)
        self.written[tuple(index.T)] = True

    def _check_filled(self, page: Mapping[str, Any]) -> None:
        filled = page.get("filled") or {}
        for key, external in self.layout.external.items():
            if key in page["data"] and not all(filled.get(key) or [False]):
                raise DocumentError(
                    f"run {self.run}, stream {self.layout.name!r}: data key {key!r} is external "
                    f"({external}, Resource/Datum) and the event holds only a datum id; pass "
                    "handler_registry={spec: handler} to the writer so it can load the data"
                )

    def _write_rows(self, index: np.ndarray, page: Mapping[str, Any], rows: Any) -> None:
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

    def _overflow_stream(self) -> _Stream:
        if self.overflow is None:
            self.overflow = _Stream(
                self.storage, f"{self.path}/{OVERFLOW_GROUP}", overflow_layout(self.layout), self.run
            )
            self._attrs_dirty = True
        return self.overflow

    def _to_overflow(self, page: Mapping[str, Any], rows: np.ndarray) -> None:
        picked = np.flatnonzero(rows)
        subpage = {
            "seq_num": _select(page["seq_num"], picked),
            "time": _select(page["time"], picked),
            "data": {k: _select(v, picked) for k, v in page["data"].items()},
        }
        self._overflow_stream().write_page(subpage)
        self._attrs_dirty = True

    def _supersede(self, point: tuple[int, ...]) -> None:
        """Move the event stored at ``point`` to the overflow before a newer one takes its place."""
        old: dict[str, Any] = {"data": {}}
        for key, name in self.layout.keys.items():
            old["data"][key] = [self.arrays[name].read(point)]
        old["time"] = [float(self.arrays[TIME].read(point))]
        old["seq_num"] = [int(self.arrays[SEQ_NUM].read(point))]
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
                    self.storage.put(
                        f"{self.path}/{name}/zarr.json", array_metadata(writer.spec, self._grown(writer.spec))
                    )
        if WRITTEN in self.arrays:
            self._flush_written(final)
        if self.overflow is not None:
            self.overflow.flush(final=final)
        if self._attrs_dirty:
            self.storage.put(f"{self.path}/zarr.json", _group_json(self.attrs()))
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
            attrs["overflow"] = {
                "events": self.overflow.length if self.overflow is not None else 0,
                "superseded": self.superseded,
            }
        return attrs


def _select(values: Any, rows: Any) -> Any:
    if isinstance(rows, slice):
        return values[rows] if isinstance(values, np.ndarray) else list(values)[rows]
    if isinstance(values, np.ndarray):
        return values[rows]
    return [values[int(i)] for i in rows]


class ZarrRun(event_model.DocumentRouter):
    """Writes the documents of one run into the store at ``path``."""

    def __init__(
        self,
        path: Path,
        start: Mapping[str, Any],
        *,
        overwrite: bool = False,
        options: ZarrOptions | None = None,
    ) -> None:
        super().__init__()
        self.options = options or ZarrOptions()
        self.path = path
        self.uid = str(start.get("uid"))
        self.storage = LocalStorage(path)
        self.storage.create_root(overwrite)
        self.start_doc = start
        self.stop_doc: Mapping[str, Any] | None = None
        self.status = "running"
        self.errors: list[str] = []
        self.grid = grid_from_start(start)
        self.streams: dict[str, _Stream] = {}
        self._stream_of: dict[str, str] = {}
        self._refused: dict[str, int] = {}
        """descriptor uid -> events not written because the descriptor could not be laid out"""
        self._write_root()

    def _write_root(self) -> None:
        attrs: dict[str, Any] = {
            "start": to_json(self.start_doc),
            "stop": to_json(self.stop_doc),
            "status": self.status,
            "bluesky_zarr": {"format": FORMAT_VERSION},
        }
        if self.errors:
            attrs["errors"] = self.errors
        self.storage.put("zarr.json", _group_json(attrs))

    def descriptor(self, doc: Any) -> None:
        name = str(doc.get("name", "primary"))
        earlier = self.streams[name].layout.descriptors if name in self.streams else ()
        grid = self.grid if self.grid is not None and name in self.grid.streams else None
        try:
            layout = stream_layout(self.start_doc, [*earlier, doc], grid, name=name, options=self.options)
        except Exception:
            self._refused[doc["uid"]] = 0
            raise
        self._stream_of[doc["uid"]] = name
        if name in self.streams:
            self.streams[name].update_layout(layout)
        else:
            self.streams[name] = _Stream(self.storage, _group_name(name), layout, self.uid)
        self.streams[name].flush()

    def event_page(self, doc: Any) -> Any:
        name = self._stream_of.get(doc["descriptor"])
        if doc["descriptor"] in self._refused:  # its descriptor's error says why; count, do not repeat
            self._refused[doc["descriptor"]] += len(doc["seq_num"])
            return doc
        if name is None:
            raise DocumentError(
                f"run {self.uid}: event page refers to unknown descriptor {doc['descriptor']}"
            )
        self.streams[name].write_page(doc)
        return doc

    def stream_resource(self, doc: Any) -> None:
        raise DocumentError(
            f"run {self.uid}: stream_resource {doc.get('uid')} points at data in {doc.get('uri')!r}, which "
            "this writer cannot copy yet; write such runs with a writer that keeps the detector's own files"
        )

    def flush(self, *, final: bool = False) -> None:
        for stream in self.streams.values():
            stream.flush(final=final)

    def stop(self, doc: Any) -> None:
        self.stop_doc = doc
        self.finish(str(doc.get("exit_status", "unknown")))

    def note_error(self, err: BaseException) -> None:
        self.errors.append(str(err))

    def finish(self, status: str) -> None:
        """Make everything visible, record ``status`` and consolidate the metadata for readers.

        A run whose writing failed anywhere is marked ``"fail"`` whatever the RunEngine said, so
        that its status never promises more than the store holds; ``errors`` says what failed.
        """
        self.flush(final=True)
        for descriptor, count in self._refused.items():
            self.errors.append(f"{count} event(s) of descriptor {descriptor} were not written: see above")
        self.status = "fail" if self.errors else status
        self._write_root()
        with warnings.catch_warnings():  # zarr-python's note that consolidation is its own extension
            warnings.simplefilter("ignore", ZarrUserWarning)
            zarr.consolidate_metadata(str(self.path))


def _group_name(stream: str) -> str:
    name = stream.replace("/", "_")
    return name if name not in {"", ".", ".."} and not name.startswith("__") else f"stream_{name}"

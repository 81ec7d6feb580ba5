"""One run into one HDF5 file: the HDF5 format's run sink.

The file is a NeXus file: the root (``NX_class`` ``NXroot``) holds the start document, the stop
document when it comes, and the run's ``status``, as a Zarr store's root does; its ``entry``
group (``NXentry``) holds one ``NXdata`` group per stream. The file is written as a SWMR writer
(:mod:`._file`): readable during the scan and after a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..._documents import EventPage, RunStart
from ..._encoding import attribute, to_json
from ...layout import StreamSchema
from ...storage import Storage
from .._run import OnError, RunSink
from .._selection import Selection
from ._file import SWMRFile
from ._layout import hdf5_layout
from ._options import HDF5Options
from ._stream import HDF5Stream

__all__ = ["ENTRY", "HDF5Run"]

FORMAT_VERSION = 1
ENTRY = "entry"
"""The NeXus entry that holds the streams."""


def _group_name(stream: str) -> str:
    name = stream.replace("/", "_")
    return name if name not in {"", ".", ".."} and not name.startswith("__") else f"stream_{name}"


class HDF5Run(RunSink[HDF5Stream]):
    """Writes the documents of one run into the HDF5 file ``path`` (its storage makes it durable)."""

    def __init__(
        self,
        path: Path,
        storage: Storage,
        start: RunStart,
        *,
        overwrite: bool = False,
        options: HDF5Options | None = None,
        selection: Selection = "all",
        on_error: OnError = "quarantine",
    ) -> None:
        super().__init__(start, storage, label="hdf5", selection=selection, on_error=on_error)
        self.options = options or HDF5Options()
        self.hold_output()  # before the file is made: an overwrite must not truncate a live one
        try:
            self.file = SWMRFile(path, overwrite=overwrite)
        except BaseException:
            self._lock.release()
            raise
        self._write_root()

    def _write_root(self) -> None:
        h5 = self.file.structure()
        attrs: dict[str, Any] = {
            "NX_class": "NXroot",
            "default": ENTRY,
            "start": to_json(self.start_doc),
            "stop": to_json(self.stop_doc),
            "status": self.status,
            "bluesky_zarr": {"format": FORMAT_VERSION, "kind": "hdf5"},
        }
        if self.errors:
            attrs["errors"] = self.errors
        if self.quarantined or self.malformed:
            attrs["quarantined"] = self.quarantine_summary()
        if self.gaps:
            attrs["gaps"] = self.gaps
        for key, value in attrs.items():
            h5.attrs[key] = attribute(value)
        entry = h5.require_group(ENTRY)
        entry.attrs["NX_class"] = "NXentry"
        groups = [_group_name(s) for s in self.streams]
        if groups:
            entry.attrs["default"] = "primary" if "primary" in groups else groups[0]

    def open_stream(self, schema: StreamSchema) -> HDF5Stream:
        path = f"{ENTRY}/{_group_name(schema.name)}"
        stream = HDF5Stream(self.file, path, hdf5_layout(schema, self.options), self.uid)
        if schema.name == "primary" or len(self.streams) == 0:
            self.file.structure()[ENTRY].attrs["default"] = _group_name(schema.name)
        return stream

    def update_stream(self, stream: HDF5Stream, schema: StreamSchema) -> None:
        stream.update_layout(hdf5_layout(schema, self.options))

    def write_page(self, stream: HDF5Stream, page: EventPage) -> None:
        stream.write_page(page)

    def flush(self, *, final: bool = False) -> None:
        """The readings to disk, then (a second flush) what vouches for them."""
        for stream in self.streams.values():
            stream.stage()
        self.file.flush()
        for stream in self.streams.values():
            stream.vouch()
        self.file.flush()

    def close(self) -> None:
        """Record the status and every group's final attributes (SWMR off), and close the file."""
        try:
            for stream in self.streams.values():
                while stream is not None:
                    stream.write_attrs()
                    stream = stream.overflow  # type: ignore[assignment]
            self._write_root()
        finally:
            self.file.close()
            self.storage.local_file()  # the file again among what the storage syncs: its final attributes

"""One run into one Zarr v3 store: the Zarr format's run sink.

Everything here runs in the writer's own thread, never in the RunEngine's. The root group holds
the start document, the stop document when it comes, and the run's ``status``; one group per
stream holds its arrays. The root is consolidated at every flush: readers see one moment of the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..._documents import EventPage, RunStart
from ..._encoding import to_json
from ...layout import StreamSchema
from ...storage import LocalStorage, Storage
from .._run import OnError, RunSink
from .._selection import Selection
from ._layout import zarr_layout
from ._metadata import Nodes
from ._options import ZarrOptions
from ._stream import ZarrStream

__all__ = ["ZarrRun"]

FORMAT_VERSION = 2


def _group_name(stream: str) -> str:
    name = stream.replace("/", "_")
    return name if name not in {"", ".", ".."} and not name.startswith("__") else f"stream_{name}"


class ZarrRun(RunSink[ZarrStream]):
    """Writes the documents of one run into the store ``output`` (a local path, or a storage)."""

    def __init__(
        self,
        output: Path | Storage,
        start: RunStart,
        *,
        overwrite: bool = False,
        options: ZarrOptions | None = None,
        selection: Selection = "all",
        on_error: OnError = "quarantine",
    ) -> None:
        storage = output if isinstance(output, Storage) else LocalStorage(output)
        super().__init__(start, storage, label="zarr", selection=selection, on_error=on_error)
        self.options = options or ZarrOptions()
        storage.create(overwrite=overwrite)
        self.hold_output()
        self.nodes = Nodes(storage, self._root_attrs)
        self.nodes.commit()

    def _root_attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "start": to_json(self.start_doc),
            "stop": to_json(self.stop_doc),
            "status": self.status,
            "bluesky_zarr": {"format": FORMAT_VERSION},
        }
        if self.errors:
            attrs["errors"] = self.errors
        if self.quarantined or self.malformed:
            attrs["quarantined"] = self.quarantine_summary()
        if self.gaps:
            attrs["gaps"] = self.gaps
        return attrs

    def open_stream(self, schema: StreamSchema) -> ZarrStream:
        stream = ZarrStream(
            self.storage, self.nodes, _group_name(schema.name), zarr_layout(schema, self.options), self.uid
        )
        stream.flush()
        self.nodes.commit()
        return stream

    def update_stream(self, stream: ZarrStream, schema: StreamSchema) -> None:
        stream.update_layout(zarr_layout(schema, self.options))
        stream.flush()
        self.nodes.commit()

    def write_page(self, stream: ZarrStream, page: EventPage) -> None:
        stream.write_page(page)

    def flush(self, *, final: bool = False) -> None:
        first: BaseException | None = None
        for stream in self.streams.values():
            try:
                stream.flush(final=final)
            except Exception as err:
                first = first or err
        if self.nodes.changed:  # what the streams made visible, in one step for every reader
            self.nodes.commit()
        if first is not None:
            raise first

    def publish_status(self) -> None:
        self.flush()
        self.nodes.commit()

    def close(self) -> None:
        """Record the status (and the stop document) in the root."""
        self.nodes.commit()

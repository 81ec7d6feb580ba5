"""The Zarr format: one Zarr v3 store per run, ``<directory>/<prefix>.zarr``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ._chunking import ZarrOptions
from ._naming import store_path
from ._writer import Format, RunSink, Writer
from ._zarr_run import ZarrRun

__all__ = ["Zarr", "ZarrWriter"]


@dataclass(frozen=True)
class Zarr(Format):
    """Each run as one Zarr v3 store, ``<directory>/<prefix>.zarr``, on the scan's grid.

    Parameters
    ----------
    data_keys
        ``"all"``, ``"arrays"``, ``"scalars"`` or a list of data key names.
    codecs, chunks, shards
        Per data key: how its chunks are encoded, their shape, and how they are gathered into
        shards (see the how-to on codecs and chunks). ``None`` keeps the defaults.
    """

    label: ClassVar[str] = "zarr"

    codecs: Mapping[str, Any] | None = None
    chunks: Mapping[str, Any] | None = None
    shards: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.options  # the forms are checked now, before any run  # noqa: B018

    @property
    def options(self) -> ZarrOptions:
        return ZarrOptions(self.codecs or {}, self.chunks or {}, self.shards or {})

    def output_path(self, directory: Path, prefix: str) -> Path:
        return store_path(directory, prefix, ".zarr")

    def open(
        self, path: Path, start: Mapping[str, Any], *, overwrite: bool, artifacts: list[Path]
    ) -> RunSink:
        run = ZarrRun(path, start, overwrite=overwrite, options=self.options)
        artifacts.append(path)
        return run


class ZarrWriter(Writer):
    """A bluesky callback that writes each run into a Zarr v3 store, ``<directory>/<prefix>.zarr``.

    Subscribe it to a RunEngine (``RE.subscribe(ZarrWriter("data/"))``), a
    ``RemoteDispatcher``, or call it with ``(name, doc)`` pairs. The RunEngine never waits on
    disk: documents go through a bounded buffer to a writer thread. Grid scans (``shape`` in the
    start document) are stored on their grid; other streams grow along ``time``.

    ``ZarrWriter(directory, ...)`` is ``Writer(directory, Zarr(...), ...)``.

    Parameters
    ----------
    directory
        Where the stores go; created if missing.
    codecs, chunks, shards
        Per data key: codecs, chunk shapes and shard shapes (``None``: the defaults).
    data_keys
        Which data keys to write: ``"all"``, ``"arrays"``, ``"scalars"`` or a list of names.
    file_prefix
        ``str.format`` template filled from the start document, e.g. ``"{start[scan_id]}-"``.
        A value from the metadata that would leave ``directory`` is refused.
    overwrite
        Replace an existing store of the same name. By default an existing store is an error
        (:class:`~bluesky_zarr.StoreExistsError`) and nothing is written.
    handler_registry
        ``{spec: handler}`` for external data (legacy Resource/Datum), filled with
        :class:`event_model.Filler` in the writer thread.
    buffer_bytes
        How many bytes of readings may wait for the disk before the RunEngine blocks.
    flush_interval
        Seconds between making partial chunks and grown arrays visible to readers.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        codecs: Mapping[str, Any] | None = None,
        chunks: Mapping[str, Any] | None = None,
        shards: Mapping[str, Any] | None = None,
        data_keys: Any = "all",
        file_prefix: str = "{start[uid]}",
        overwrite: bool = False,
        handler_registry: Mapping[str, Callable[..., Any]] | None = None,
        buffer_bytes: int = 512 * 1024**2,
        flush_interval: float = 1.0,
    ) -> None:
        super().__init__(
            directory,
            Zarr(data_keys=data_keys, codecs=codecs, chunks=chunks, shards=shards),
            file_prefix=file_prefix,
            overwrite=overwrite,
            handler_registry=handler_registry,
            buffer_bytes=buffer_bytes,
            flush_interval=flush_interval,
        )

    def __repr__(self) -> str:
        return f"ZarrWriter({str(self.directory)!r}, file_prefix={self.file_prefix!r})"

"""The Zarr format: one Zarr v3 store per run, ``<directory>/<prefix>.zarr``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..._documents import RunStart
from ...storage import Storage
from .._format import Finalized, Format
from .._run import OnError
from ._finalize import finalize_store
from ._options import ZarrOptions
from ._run import ZarrRun

__all__ = ["Zarr"]


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

    def output_path(self, directory: Storage, prefix: str) -> Storage:
        return directory.child(f"{prefix}.zarr")

    def owns(self, name: str) -> bool:
        return name == "zarr.json"

    def finalize(self, output: Storage) -> list[Finalized]:
        return [finalize_store(output)] if output.exists("zarr.json") else []

    def open(
        self,
        output: Storage,
        start: RunStart,
        *,
        overwrite: bool,
        artifacts: list[Path | str],
        on_error: OnError,
    ) -> ZarrRun:
        run = ZarrRun(
            output,
            start,
            overwrite=overwrite,
            options=self.options,
            selection=self.selection,
            on_error=on_error,
        )
        artifacts.append(output.artifact())
        return run

"""The HDF5 format: one NeXus HDF5 file per run, ``<directory>/<prefix>.h5`` (or ``.nxs``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..._documents import RunStart
from ..._errors import ConfigurationError
from ..._naming import HDF5_SUFFIXES
from ...storage import LocalStorage, Storage
from .._format import Finalized, Format
from .._run import OnError
from ._finalize import finalize_file
from ._options import HDF5Options
from ._run import HDF5Run

__all__ = ["HDF5"]


@dataclass(frozen=True)
class HDF5(Format):
    """Each run as one NeXus HDF5 file, ``<directory>/<prefix>.h5``, on the scan's grid, SWMR-readable.

    Parameters
    ----------
    data_keys
        ``"all"``, ``"arrays"``, ``"scalars"`` or a list of data key names.
    compression
        Per data key: ``"gzip"`` (readable by every HDF5 library), ``"lz4"``, ``"zstd"`` (HDF5
        plugins: readers ``import hdf5plugin`` first), ``"none"``, or ``(name, level)``. Readings
        of 64 KiB or more (camera frames) default to ``("gzip", 1)`` with shuffle, the rest to none.
    chunks
        Per data key: its chunk shape, as for :class:`~bluesky_zarr.Zarr` (one frame per chunk by
        default).
    suffix
        ``".h5"`` (default), ``".hdf5"`` or ``".nxs"``.

    Notes
    -----
    h5py writes a file itself, so the target must be a local directory (or ``file://``); an
    ``s3://`` target is refused with a :class:`~bluesky_zarr.ConfigurationError`.
    """

    label: ClassVar[str] = "hdf5"

    compression: Mapping[str, Any] | None = None
    chunks: Mapping[str, Any] | None = None
    suffix: str = ".h5"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.suffix not in HDF5_SUFFIXES:
            raise ConfigurationError(
                f"HDF5: suffix must be one of {', '.join(HDF5_SUFFIXES)}, not {self.suffix!r}"
            )
        self.options  # the forms are checked now, before any run  # noqa: B018

    @property
    def options(self) -> HDF5Options:
        return HDF5Options(self.compression or {}, self.chunks or {})

    def output_path(self, directory: Storage, prefix: str) -> Storage:
        output = directory.child(f"{prefix}{self.suffix}")
        if output.local_file() is None:
            raise ConfigurationError(
                f"HDF5 cannot write to {output.location}: h5py writes a local file, and this target is "
                "not on a local file system; write HDF5 to a local directory (and copy the file once the "
                "run ends), or write Zarr or Parquet to object storage"
            )
        return output

    def owns(self, name: str) -> bool:
        return False  # an HDF5 output is a file of its own, never below a run's directory

    def found_at(self, output: Storage) -> bool:
        return (
            isinstance(output, LocalStorage) and output.root.suffix in HDF5_SUFFIXES and output.root.is_file()
        )

    def finalize(self, output: Storage) -> list[Finalized]:
        assert isinstance(output, LocalStorage)  # found_at said so
        return [finalize_file(output.root)]

    def open(
        self,
        output: Storage,
        start: RunStart,
        *,
        overwrite: bool,
        artifacts: list[Path | str],
        on_error: OnError,
    ) -> HDF5Run:
        path = output.local_file()
        assert path is not None  # output_path refused any other
        run = HDF5Run(
            path,
            output,
            start,
            overwrite=overwrite,
            options=self.options,
            selection=self.selection,
            on_error=on_error,
        )
        artifacts.append(output.artifact())
        return run

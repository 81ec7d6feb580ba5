"""What a user asks of the HDF5 format per data key: its compression and its chunks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..._errors import ConfigurationError
from ...layout import ChunkRequest, check_request

__all__ = ["COMPRESSIONS", "HDF5Options", "compression_filters"]

COMPRESSIONS = ("none", "gzip", "lz4", "zstd")
"""``gzip`` is in every HDF5 library (MATLAB, Igor, h5py); ``lz4`` and ``zstd`` are HDF5 filter
plugins, which readers get from ``hdf5plugin`` (``import hdf5plugin`` before opening the file)."""


def compression_filters(choice: Any, *, where: str) -> dict[str, Any]:
    """The ``create_dataset`` keywords of a compression choice: a name, or ``(name, level)``."""
    name, level = (choice, None) if not isinstance(choice, tuple | list) else (*choice, None)[:2]
    name = "none" if name is None else str(name).lower()
    if name not in COMPRESSIONS or not (
        level is None or (isinstance(level, int) and not isinstance(level, bool))
    ):
        raise ConfigurationError(
            f"{where}: compression {choice!r} is not one of {', '.join(COMPRESSIONS)} (or a (name, level) "
            "pair such as ('gzip', 4)); e.g. HDF5(compression={'camera_image': 'lz4'})"
        )
    if name == "none":
        return {}
    if name == "gzip":
        level = 1 if level is None else level
        if not 0 <= level <= 9:
            raise ConfigurationError(f"{where}: gzip levels go from 0 to 9, not {level}")
        return {"compression": "gzip", "compression_opts": level, "shuffle": True}
    import hdf5plugin  # the lz4 and zstd filters, registered with the HDF5 library on import

    if name == "lz4":
        return dict(hdf5plugin.LZ4())
    return dict(hdf5plugin.Zstd() if level is None else hdf5plugin.Zstd(clevel=level))


@dataclass(frozen=True)
class HDF5Options:
    """What a user asked for, per data key: compression and chunks (checked when a writer is made)."""

    compression: Mapping[str, Any] = field(default_factory=dict)
    chunks: Mapping[str, ChunkRequest] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for what, value in (("compression", self.compression), ("chunks", self.chunks)):
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ConfigurationError(
                    f"HDF5: {what} must be a mapping from data key to its setting, e.g. "
                    f"{{'camera_image': ...}}, not {value!r}"
                )
        for key, choice in self.compression.items():
            compression_filters(choice, where=f"HDF5: data key {key!r}")
        for key, request in self.chunks.items():
            check_request(
                request,
                "chunks",
                f"HDF5: data key {key!r}",
                irregular="an HDF5 dataset's chunks all have one shape; give one size per dimension",
            )

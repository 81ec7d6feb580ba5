"""The base of the output formats, and the registry that finds them by name."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .._documents import RunStart
from .._errors import ConfigurationError
from ..storage import Storage
from ._run import OnError, RunSink
from ._selection import DataKeys, Selection, normalize_data_keys

__all__ = ["Finalized", "Format", "finalized_by", "resolve_formats"]


@dataclass(frozen=True)
class Finalized:
    """What :func:`~bluesky_zarr.finalize` did to one output (a store, a stream's file)."""

    path: str
    """The store or file, a path or a URL."""
    format: str
    status: str
    """Its status now: ``"incomplete"`` once finalized, or what the writer recorded."""
    changed: bool
    """``False``: it was finished already and was left as it was."""
    notes: tuple[str, ...] = field(default=())
    """What was repaired, for the user to read."""


def finalized_by() -> dict[str, str]:
    """The ``finalized`` metadata of an output finished after its writer stopped."""
    return {"by": "bluesky_zarr.finalize", "at": datetime.datetime.now(datetime.UTC).isoformat()}


@dataclass(frozen=True)
class Format:
    """Base of the output formats: what a writer writes for each run, and which data keys.

    Subclasses are small frozen dataclasses (:class:`~bluesky_zarr.Zarr`,
    :class:`~bluesky_zarr.Parquet`, :class:`~bluesky_zarr.ArrowIPC`, :class:`~bluesky_zarr.HDF5`,
    :class:`~bluesky_zarr.CSV`); give one or more to
    :class:`~bluesky_zarr.Writer` or :func:`~bluesky_zarr.export`.

    Parameters
    ----------
    data_keys
        Which data keys this format writes: ``"all"``, ``"arrays"`` (readings with a non-empty
        shape), ``"scalars"`` (the rest), or a list of data key names. ``time``, ``seq_num`` and
        grid indices always come along.
    """

    label: ClassVar[str] = ""
    """The format's name in ``artifacts`` and in ``format=...``."""
    registry: ClassVar[dict[str, type[Format]]] = {}

    data_keys: DataKeys = "all"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.label:
            Format.registry[cls.label] = cls

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_keys", normalize_data_keys(self.data_keys, type(self).__name__))

    @property
    def selection(self) -> Selection:
        return self.data_keys  # type: ignore[return-value]  # checked in __post_init__

    def output_path(self, directory: Storage, prefix: str) -> Storage:
        """Where a run with this file prefix goes below ``directory`` (a store, or a folder of
        per-stream files), as a storage of its own."""
        raise NotImplementedError

    def existing_output(self, output: Storage) -> str | None:
        """Where an output of this format already is at ``output`` (that a new run would
        replace), or ``None``."""
        return output.location if output.exists() else None

    def owns(self, name: str) -> bool:
        """Whether a file (or folder) directly below an output's root belongs to this format."""
        raise NotImplementedError

    def found_at(self, output: Storage) -> bool:
        """Whether ``output`` (a path a user gave) holds an output of this format."""
        return any(self.owns(name) for name in output.list())

    def finalize(self, output: Storage) -> list[Finalized]:
        """Finish what a writer of this format left unfinished at ``output`` (a run's store or
        directory): consistent, readable, marked ``incomplete``. Outputs finished already are left
        as they are; nothing of this format there is ``[]``. The caller makes sure that no writer
        is writing it (see :func:`~bluesky_zarr.finalize`)."""
        raise NotImplementedError

    def open(
        self,
        output: Storage,
        start: RunStart,
        *,
        overwrite: bool,
        artifacts: list[Path | str],
        on_error: OnError,
    ) -> RunSink[Any]:
        """The sink that writes one run into ``output``; appends the files it makes to ``artifacts``
        (local paths, or the URLs of objects)."""
        raise NotImplementedError


def resolve_formats(formats: Iterable[Format | str]) -> tuple[Format, ...]:
    """Formats from objects or names (``"zarr"``, ``"parquet"``, ``"arrow"``, ``"hdf5"``, ``"csv"``)."""
    resolved: list[Format] = []
    for item in formats:
        if isinstance(item, Format):
            resolved.append(item)
        elif isinstance(item, str) and item.lower() in Format.registry:
            resolved.append(Format.registry[item.lower()]())
        else:
            names = ", ".join(repr(n) for n in sorted(Format.registry))
            raise ConfigurationError(
                f"unknown format {item!r}: give one of {names}, or a format object such as "
                "Parquet(compression='snappy')"
            )
    if not resolved:
        raise ConfigurationError("give at least one format, e.g. Writer('data/', Zarr(), Parquet())")
    labels = [f.label for f in resolved]
    doubled = sorted({label for label in labels if labels.count(label) > 1})
    if doubled:
        raise ConfigurationError(
            f"{doubled[0]!r} is given twice; two formats of one kind would write the same files. Use one "
            "per writer, or two writers with different file_prefix"
        )
    return tuple(resolved)

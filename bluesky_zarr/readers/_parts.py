"""The parts of a Parquet stream that a running (or killed) writer has flushed, for readers."""

from __future__ import annotations

from pathlib import Path

from .._errors import RunNotFoundError
from .._naming import live_part_names

__all__ = ["live_parquet_parts"]


def live_parquet_parts(run_directory: str | Path, stream: str = "primary") -> list[Path]:
    """The Parquet files that hold every row of a stream flushed so far, each row once, in order.

    While a run goes on its stream is a folder of parts, ``<stream>.parquet.parts/``, and every 64
    small parts are combined into one: the combined part appears whole before the parts it holds
    are deleted, so a plain glob (``pl.scan_parquet(".../*.parquet")``, duckdb's
    ``'.../*.parquet'``) can read those rows twice for that moment, and forever after a crash at
    it. The list this gives holds each row once at every moment. Once the run is merged, it is
    ``[<stream>.parquet]``.

    A part listed here may be combined (and deleted) before it is read: a reader that gets a
    ``FileNotFoundError`` asks again.

    Raises
    ------
    RunNotFoundError
        The run directory holds neither ``<stream>.parquet`` nor ``<stream>.parquet.parts``.
    """
    root = Path(run_directory)
    merged, folder = root / f"{stream}.parquet", root / f"{stream}.parquet.parts"
    for _ in range(2):  # the merge at the stop may finish between the two looks
        if merged.is_file():
            return [merged]
        try:
            return [folder / name for name in live_part_names(p.name for p in folder.iterdir())]
        except FileNotFoundError:
            continue
    raise RunNotFoundError(
        f"{root} holds neither {merged.name} nor {folder.name}: give the run's directory, "
        f"<directory>/<file_prefix>, and the name of one of its streams (not {stream!r}?)"
    )

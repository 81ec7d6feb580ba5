"""The errors bluesky-zarr raises.

Every error derives from :class:`BlueskyZarrError` and also from the built-in exception it
resembles, so ``except FileExistsError`` keeps working for code that does not know this package.
Messages name the run, the path or the data key, and say what to do.
"""

from __future__ import annotations

__all__ = [
    "BlueskyZarrError",
    "ConfigurationError",
    "CorruptDataError",
    "DocumentError",
    "OutputBusyError",
    "RunNotFoundError",
    "StoreExistsError",
    "UnsafePathError",
    "WriteError",
    "WriterProcessError",
]


class BlueskyZarrError(Exception):
    """The root of every error raised by bluesky-zarr."""


def said_by(err: BaseException, who: str) -> None:
    """Put ``who`` (the writer, and the format that met ``err``: ``"ZarrWriter (zarr)"``) before
    its message, unless it begins with it already.

    A RunEngine records the message of what a callback raised as the ``reason`` of the run's stop
    document; so the reason names the writer and format, not only the path.
    """
    if isinstance(err, OSError) and err.strerror and len(err.args) == 2:
        if not err.strerror.startswith(who):  # said in a writer process, and pickled: it says so
            err.strerror = f"{who}: {err.strerror}"
            err.args = (err.errno, err.strerror)  # what a pickled copy is made of
    elif err.args and isinstance(err.args[0], str) and not err.args[0].startswith(who):
        err.args = (f"{who}: {err.args[0]}", *err.args[1:])


class ConfigurationError(BlueskyZarrError, ValueError):
    """A writer was asked for something it cannot do (a chunk shape that does not fit, an unknown codec).

    Raised before anything of the affected run or array is written.
    """


class DocumentError(BlueskyZarrError, ValueError):
    """A document does not fit what earlier documents of its run declared."""


class UnsafePathError(BlueskyZarrError, ValueError):
    """A file name made from metadata would leave the target directory, or cannot be made."""


class StoreExistsError(BlueskyZarrError, FileExistsError):
    """The store a run would write exists already and the writer was not asked to overwrite it."""


class OutputBusyError(StoreExistsError):
    """Another writer, alive, is writing the output (a second writer, ``overwrite``, ``finalize``).

    Every output has one owner; wait for that writer to finish, or choose another ``file_prefix``.
    """


class WriteError(BlueskyZarrError, OSError):
    """Writing to disk failed; what was written before stays readable."""


class CorruptDataError(BlueskyZarrError, ValueError):
    """Stored data does not decode: a checksum that does not match, a size that does not fit.

    The data was damaged after it was written (or by another program); it is not a mistake in
    what a writer was asked for.
    """


class RunNotFoundError(BlueskyZarrError, FileNotFoundError):
    """A path given to a reader or to a recovery tool holds no run output of the expected kind."""


class WriterProcessError(BlueskyZarrError, ChildProcessError):
    """The writer process (``worker="process"``) is gone: killed, or ended on a signal.

    What it wrote stays readable; :func:`bluesky_zarr.finalize` finishes each output it left.
    """

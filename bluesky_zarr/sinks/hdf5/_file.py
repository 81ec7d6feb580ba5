"""One HDF5 file, written as a SWMR writer: readers see a valid file at every moment, and after a crash.

HDF5's single-writer/multiple-reader mode (SWMR) lets a writer change the values and lengths of
datasets that exist, never the file's structure: no new groups, datasets or attributes. So the
file is written in two modes. Its structure (a new stream, a dataset widened, attributes that
change) is made with SWMR off; the first :meth:`SWMRFile.flush` after it switches SWMR on, and
every flush then makes what was written visible. A change of structure afterwards (a stream that
starts late, an overflow group, a widened dataset, and at the end the run's status and stop
document) closes the file and opens it again with SWMR off, without HDF5's file lock (which a
reader that holds the file open keeps); a reader that opens the file just then gets an
``OSError`` and tries again, and one that holds it open sees the new structure once the writer
is back in SWMR mode (or has closed the file).

A reader opens it with ``h5py.File(path, "r", swmr=True)``, during the scan and after a crash
(a file whose writer was killed says so by HDF5's consistency flags, which only a SWMR reader
passes); a finished file opens in any HDF5 reader.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import h5py

from ..._errors import StoreExistsError, WriteError

__all__ = ["LIBVER", "SWMRFile", "wrapped"]

LIBVER = ("v110", "v110")
"""The file format of HDF5 1.10, the first with SWMR (h5py's ``libver="latest"`` when SWMR came),
and no newer: readable by every HDF5 library since (MATLAB, Igor and IDL ship 1.10 to 1.14),
whichever newer library writes it."""


@contextlib.contextmanager
def wrapped(path: Path, action: str = "write") -> Iterator[None]:
    """An ``OSError`` of the HDF5 library becomes a :class:`~bluesky_zarr.WriteError` naming the file."""
    try:
        yield
    except OSError as err:
        message = f"cannot {action} {path}: {err}"
        raise (WriteError(err.errno, message) if err.errno else WriteError(message)) from err


class SWMRFile:
    """An HDF5 file (the 1.10 format, :data:`LIBVER`) that is in SWMR mode except while its
    structure changes."""

    def __init__(self, path: Path, *, overwrite: bool) -> None:
        self.path = path
        with wrapped(path, "create"):
            try:
                self.h5: h5py.File | None = h5py.File(path, "w" if overwrite else "w-", libver=LIBVER)
            except FileExistsError as err:
                raise StoreExistsError(
                    f"{path} exists already (another writer made it meanwhile?); nothing was written to "
                    "it: choose another file_prefix, or pass overwrite=True to replace it"
                ) from err
        self.swmr = False

    def _open(self) -> h5py.File:
        if self.h5 is None:
            raise WriteError(f"{self.path} was closed; it takes no more writes")
        return self.h5

    @property
    def data(self) -> h5py.File:
        """The file, to write the values of datasets that exist (SWMR on or off)."""
        return self._open()

    def structure(self) -> h5py.File:
        """The file with SWMR off, to create groups and datasets and to set attributes."""
        h5 = self._open()
        if self.swmr:
            with wrapped(self.path):
                h5.close()
                # without HDF5's file lock, which a SWMR reader that holds the file open would keep
                self.h5 = h5 = h5py.File(self.path, "r+", libver=LIBVER, locking=False)
            self.swmr = False
        return h5

    def flush(self) -> None:
        """Make what was written visible to SWMR readers (SWMR on from the first flush)."""
        h5 = self._open()
        with wrapped(self.path):
            if not self.swmr:
                h5.swmr_mode = True
                self.swmr = True
            h5.flush()

    def close(self) -> None:
        """Close the file; calling it again does nothing."""
        if self.h5 is not None:
            h5, self.h5 = self.h5, None
            with wrapped(self.path, "close"):
                h5.close()

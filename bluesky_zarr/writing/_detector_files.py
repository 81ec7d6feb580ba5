"""Frames that detectors write into files of their own, read into the events that point at them.

ophyd-async detectors (and areaDetector, PandA and Odin through ophyd-async) put no frames in
their events. A ``stream_resource`` document names a file and a dataset in it (``uri``,
``parameters["dataset"]``) for one data key, and each ``stream_datum`` says which frames of that
dataset (``indices``) belong to which events of a descriptor (``seq_nums``). The writer reads
those frames (HDF5, with h5py) and gives them to the formats as if they had come in the event,
so they land on the scan's grid like any other reading.

A file the detector is still writing is read once it holds the frames: the dataset is refreshed
and read again, with growing pauses, for up to ``timeout`` seconds. A frame that cannot be read
(no file, no dataset, too few frames, a file of another kind) becomes an
:class:`~bluesky_zarr._documents.UnreadReading` that names the file, the dataset and the frames;
the run sink keeps it in the stream's quarantine, so the rest of the run lands and the run ends
``partial``. Once a file has failed, later frames from it are tried once, without waiting again.

The legacy areaDetector specs ``AD_HDF5`` and ``AD_HDF5_SWMR`` (Resource/Datum documents) are
read by :class:`AreaDetectorHDF5Handler`, registered by default.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from .._documents import EventDescriptor, EventPage, StreamDatum, StreamResource, UnreadReading
from ..layout import stream_reading_shape

__all__ = ["HDF5_MIMETYPES", "AreaDetectorHDF5Handler", "DetectorFiles"]

HDF5_MIMETYPES = {"application/x-hdf5", "application/x-hdf"}

_FIRST_PAUSE, _LONGEST_PAUSE = 0.01, 0.5


def _open_hdf5(path: str) -> Any:
    """An HDF5 file for reading while it may still be written: SWMR when its writer uses it, and
    without file locks when another process holds the file open without SWMR (the frames are read
    only once the dataset holds them). The first way that opens it is taken."""
    import h5py

    last: OSError | None = None
    for options in ({"swmr": True}, {}, {"locking": False}):
        try:
            return h5py.File(path, "r", **options)
        except OSError as err:
            last = err
    assert last is not None
    raise last


def local_path(uri: str) -> str | None:
    """The path of a ``file:`` URI (any host, as ophyd-async writes ``file://localhost/...``)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path)
    return None


class _Dataset:
    """One dataset of one detector file, opened when first read and refreshed as it grows."""

    def __init__(self, resource: StreamResource, timeout: float) -> None:
        self.uri = str(resource.get("uri", ""))
        self.data_key = str(resource.get("data_key", ""))
        parameters: Mapping[str, Any] = resource.get("parameters") or {}
        self.name = str(parameters.get("dataset", ""))
        self.mimetype = str(resource.get("mimetype", ""))
        self.timeout = timeout
        self.path = local_path(self.uri)
        self._file: Any = None
        self.failed = False
        """a read of this file gave up already: later reads do not wait again"""

    def where(self, start: int, stop: int) -> str:
        return f"file {self.path or self.uri!r}, dataset {self.name!r}, frames {start} to {stop - 1}"

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start`` to ``stop - 1``; waits (bounded) while the file does not hold them yet.

        Raises
        ------
        LookupError
            The frames cannot be read; the message says where and why.
        """
        if self.mimetype not in HDF5_MIMETYPES:
            raise LookupError(f"{self.where(start, stop)}: {self.mimetype!r} files are not read (only HDF5)")
        if self.path is None:
            raise LookupError(f"{self.where(start, stop)}: only local files (file: URIs) are read")
        wait = 0.0 if self.failed else self.timeout
        deadline = time.monotonic() + wait
        pause = _FIRST_PAUSE
        while True:
            try:
                if self._file is None:
                    self._file = _open_hdf5(self.path)
                dataset = self._file[self.name]
                if getattr(self._file, "swmr_mode", False):
                    dataset.refresh()
                if dataset.shape[0] >= stop:
                    return np.asarray(dataset[start:stop])
                problem = f"the dataset holds {dataset.shape[0]} frames"
            except (OSError, KeyError) as err:  # not there (yet), or being created
                problem = f"{type(err).__name__}: {err}"
                self.close()
            if time.monotonic() >= deadline:
                self.failed = True
                waited = f" after waiting {wait:g} s" if wait else ""
                raise LookupError(f"{self.where(start, stop)}: not there{waited} ({problem})")
            time.sleep(pause)
            pause = min(2 * pause, _LONGEST_PAUSE)

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None


class DetectorFiles:
    """The stream resources and datums of one run, and the frames of its events read from them.

    Parameters
    ----------
    timeout
        Seconds to wait for a detector file to hold the frames an event points at.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._datasets: dict[str, _Dataset] = {}
        """stream resource uid -> its dataset"""
        self._keys: dict[str, dict[str, tuple[int, ...]]] = {}
        """descriptor uid -> its data keys in detector files -> the shape of one reading"""
        self._datums: dict[tuple[str, str], list[tuple[int, int, int, int, str]]] = {}
        """(descriptor, data key) -> (first seq_num, last + 1, first index, last + 1, resource), in
        the order of first seq_num (one datum an event in a step scan: found by bisection)"""

    def descriptor(self, doc: EventDescriptor) -> bool:
        """Note the data keys of ``doc`` that detector files hold; whether there are any."""
        keys = {
            key: stream_reading_shape(data_key)
            for key, data_key in (doc.get("data_keys") or {}).items()
            if str(data_key.get("external", "")).startswith("STREAM:")
        }
        if keys:
            self._keys[doc["uid"]] = keys
        return bool(keys)

    def stream_resource(self, doc: StreamResource) -> None:
        self._datasets[doc["uid"]] = _Dataset(doc, self.timeout)

    def stream_datum(self, doc: StreamDatum) -> None:
        resource = doc["stream_resource"]
        key = self._datasets[resource].data_key
        seq, index = doc["seq_nums"], doc["indices"]
        bisect.insort(
            self._datums.setdefault((doc["descriptor"], key), []),
            (int(seq["start"]), int(seq["stop"]), int(index["start"]), int(index["stop"]), resource),
            key=_first_seq_num,
        )

    def fill(self, page: EventPage) -> EventPage:
        """``page`` with the readings of its detector-file keys (or why each could not be read)."""
        keys = self._keys.get(page["descriptor"])
        if not keys:
            return page
        seq_nums = [int(s) for s in page["seq_num"]]
        data = dict(page["data"])
        filled = dict(page.get("filled") or {})
        for key, shape in keys.items():
            data[key] = [self._reading(page["descriptor"], key, shape, s) for s in seq_nums]
            filled[key] = [True] * len(seq_nums)
        return {**page, "data": data, "filled": filled}

    def _reading(self, descriptor: str, key: str, shape: tuple[int, ...], seq_num: int) -> Any:
        datums = self._datums.get((descriptor, key), [])
        i = bisect.bisect_right(datums, seq_num, key=_first_seq_num) - 1
        if i < 0 or seq_num >= datums[i][1]:
            return UnreadReading("could not be read: no stream_datum document points at its frames")
        first, last, start, stop, resource = datums[i]
        per_event = (stop - start) // max(1, last - first)
        begin = start + (seq_num - first) * per_event
        dataset = self._datasets[resource]
        try:
            frames = dataset.read(begin, begin + per_event)
        except LookupError as err:
            return UnreadReading(f"could not be read from {err}")
        try:
            return frames.reshape(shape)
        except ValueError:
            return UnreadReading(
                f"could not be read from {dataset.where(begin, begin + per_event)}: frames of shape "
                f"{list(frames.shape)} where the descriptor declares {list(shape)}"
            )

    def close(self) -> None:
        for dataset in self._datasets.values():
            dataset.close()


def _first_seq_num(datum: tuple[int, int, int, int, str]) -> int:
    return datum[0]


class AreaDetectorHDF5Handler:
    """The legacy areaDetector HDF5 handler (specs ``AD_HDF5``, ``AD_HDF5_SWMR``), for event-model's Filler.

    A datum's ``point_number`` selects ``frame_per_point`` frames of ``/entry/data/data``; one
    frame per point is returned as one frame (no leading axis of length one).
    """

    specs = frozenset({"AD_HDF5", "AD_HDF5_SWMR"})

    def __init__(self, filename: str, frame_per_point: int = 1) -> None:
        self._file = _open_hdf5(str(Path(filename)))
        self._dataset = self._file["/entry/data/data"]
        self._per_point = int(frame_per_point)

    def __call__(self, point_number: int) -> np.ndarray:
        if getattr(self._file, "swmr_mode", False):
            self._dataset.refresh()
        start = int(point_number) * self._per_point
        frames = np.asarray(self._dataset[start : start + self._per_point])
        if len(frames) < self._per_point:
            raise LookupError(
                f"file {self._file.filename!r}, dataset '/entry/data/data': frames {start} to "
                f"{start + self._per_point - 1} are not there (it holds {self._dataset.shape[0]})"
            )
        return frames[0] if self._per_point == 1 else frames

    def close(self) -> None:
        self._file.close()

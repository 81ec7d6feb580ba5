"""Whether a run fits where it goes: the free space against what its descriptors announce.

A scan that cannot fit fails when the disk fills, after hours of a beamtime maybe. The start
document says how many points a plan will take (``num_points``), and each descriptor how large
one event of its stream is (``shape`` and dtype of every data key); so at the first descriptor of
a stream, in the caller's thread, the writer knows about how many bytes the run will need,
uncompressed, and compares them with the free space of the file system it writes to. What it does
then is the writer's ``low_space`` option: ``"warn"`` (the default: compression may make the run
fit, so the scan goes on, warned) or ``"refuse"`` (the scan is stopped at once, before its first
event is written).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from typing import Any, Literal

from .._errors import BlueskyZarrError, ConfigurationError, WriteError
from .._units import size_text
from ..layout import reading_dtype, reading_nbytes, stream_reading_shape
from ..storage import Storage

__all__ = ["LowSpace", "SpaceCheck", "event_nbytes"]

logger = logging.getLogger("bluesky_zarr")

LowSpace = Literal["warn", "refuse"]


def event_nbytes(descriptor: Mapping[str, Any]) -> int:
    """About how many bytes one event of ``descriptor`` holds, uncompressed, as the layout stores
    each reading (a data key it cannot lay out counts nothing here: the format says why)."""
    stream = str(descriptor.get("name", "primary"))
    total = 0
    for key, data_key in (descriptor.get("data_keys") or {}).items():
        if not isinstance(data_key, Mapping):
            continue
        try:
            total += reading_nbytes(reading_dtype(key, data_key, stream), stream_reading_shape(data_key))
        except (BlueskyZarrError, TypeError, ValueError):
            continue
    return total


class SpaceCheck:
    """Estimates each run's size from its descriptors and compares it with the free space."""

    def __init__(self, low_space: LowSpace) -> None:
        if low_space not in ("warn", "refuse"):
            raise ConfigurationError(f"low_space must be 'warn' or 'refuse', not {low_space!r}")
        self.low_space = low_space
        self._runs: dict[str, tuple[int, list[Storage]]] = {}
        """run uid -> its planned number of points, and its outputs that know their free space"""
        self._needed: dict[str, int] = {}
        """run uid -> the bytes its streams need so far"""
        self._streams: set[tuple[str, str]] = set()
        """(run uid, stream name) estimated already"""

    def start(self, uid: str, start: Mapping[str, Any], outputs: list[Storage]) -> None:
        points = start.get("num_points")
        if isinstance(points, int) and points > 0:
            self._runs[uid] = (points, outputs)

    def descriptor(self, doc: Mapping[str, Any]) -> None:
        """Check the run again with one more stream; raises with ``low_space="refuse"``."""
        uid = str(doc.get("run_start"))
        run = self._runs.get(uid)
        stream = str(doc.get("name", "primary"))
        if run is None or stream != "primary" or (uid, stream) in self._streams:
            return  # other streams (a baseline: two readings) are small beside the one the plan counts
        self._streams.add((uid, stream))
        points, outputs = run
        per_event = event_nbytes(doc)
        needed = self._needed[uid] = self._needed.get(uid, 0) + per_event * points * len(outputs)
        for output in outputs:
            free = output.free_bytes()
            if free is None or needed <= free:
                continue
            message = (
                f"run {uid}: stream {stream!r} needs about {size_text(needed)} ({points} events of "
                f"{size_text(per_event)}, uncompressed, in {len(outputs)} output(s)) and "
                f"{output.location} has {size_text(free)} free"
            )
            if self.low_space == "refuse":
                raise WriteError(
                    errno.ENOSPC,
                    f"{message}; the run was stopped before its first event was written "
                    "(low_space='refuse'). Free space, or write to another directory",
                )
            logger.warning(
                "%s; compression may make it fit, so the scan goes on. Free space, or pass "
                "low_space='refuse' to stop such a run before it starts",
                message,
            )
            return

    def stop(self, uid: str) -> None:
        self._runs.pop(uid, None)
        self._needed.pop(uid, None)
        self._streams = {s for s in self._streams if s[0] != uid}

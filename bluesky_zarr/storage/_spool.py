"""The local spool of an object store: what could not be uploaded, kept in order to be uploaded later.

When an upload fails for good (the retries are spent: an outage, a bucket that refuses), the
object goes to a spool directory instead, and so does every object the run writes after it,
without trying the bucket again: the run ends quickly, and fails, and nothing it wrote is lost.
:func:`finalize_spool` uploads the spooled objects once the bucket is reachable again, in the
order they were written, so the metadata that describes data still reaches the bucket after
the data. The spool of a run is the directory ``<spool>/<bucket>/<prefix>``::

    spool.json     the bucket, the prefix and the storage options (never a credential)
    journal        one key a line, in the order the objects were written (a key again: replaced)
    objects/<key>  each spooled object's latest bytes
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from .._errors import RunNotFoundError

__all__ = ["Spool", "finalize_spool"]

_SETTINGS = "spool.json"
_JOURNAL = "journal"
_OBJECTS = "objects"


class Spool:
    """The spool directory of one storage root."""

    def __init__(self, directory: Path, bucket: str, prefix: str, options: Mapping[str, Any]) -> None:
        self.directory = directory
        (directory / _OBJECTS).mkdir(parents=True, exist_ok=True)
        settings = {"bucket": bucket, "prefix": prefix, "storage_options": dict(options)}
        (directory / _SETTINGS).write_text(json.dumps(settings, default=str))
        self.count = 0

    def path(self, key: str) -> Path:
        return self.directory / _OBJECTS / key

    def put(self, key: str, data: bytes | bytearray | memoryview | BinaryIO) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.spooling")
        with open(tmp, "wb") as file:
            if isinstance(data, bytes | bytearray | memoryview):
                file.write(data)
            else:
                data.seek(0)
                shutil.copyfileobj(data, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        with open(self.directory / _JOURNAL, "a") as journal:
            journal.write(key + "\n")
            journal.flush()
            os.fsync(journal.fileno())
        self.count += 1

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        return path.read_bytes() if path.is_file() else None


def finalize_spool(
    directory: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
) -> list[str]:
    """Upload what a writer kept in its spool when the bucket could not be reached; returns the URLs.

    Objects go up in the order the writer wrote them (each key once, where it was last written),
    so data reaches the bucket before the metadata that describes it. The spool directory is
    removed once everything is uploaded; if an upload fails, the spool stays as it is and this can
    be called again.

    Parameters
    ----------
    directory
        The spool of one run, ``<spool>/<bucket>/<prefix>`` (the writer's error names it).
    storage_options
        Options that differ from the writer's (an endpoint that moved); credentials come from the
        environment.
    """
    from ._s3 import S3Storage

    root = Path(directory)
    settings_file = root / _SETTINGS
    if not settings_file.is_file():
        raise RunNotFoundError(
            f"{root} is not a spool of bluesky-zarr (no {_SETTINGS}); give the directory an error named"
        )
    settings = json.loads(settings_file.read_text())
    storage = S3Storage(
        settings["bucket"], settings["prefix"], {**settings["storage_options"], **(storage_options or {})}
    )
    journal = (root / _JOURNAL).read_text().splitlines() if (root / _JOURNAL).is_file() else []
    last = {key: i for i, key in enumerate(journal)}
    uploaded: list[str] = []
    for key in sorted(last, key=last.__getitem__):
        path = root / _OBJECTS / key
        with open(path, "rb") as file:
            storage.upload_now(key, file)
        uploaded.append(storage.describe(key))
    shutil.rmtree(root)
    return uploaded

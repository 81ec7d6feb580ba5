"""What a writer is pointed at: a plain path, a ``file://`` URL or an ``s3://`` URL, as a :class:`Storage`.

The target is understood, and a target that cannot be written is refused, before anything is
written: an unknown URL scheme never becomes a local folder named after it (``./s3:/bucket``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from zarr.abc.store import Store

from .._errors import ConfigurationError
from ._base import Storage
from ._local import LocalStorage
from ._zarr_store import ZarrStoreStorage

__all__ = ["SCHEMES", "Target", "abort_incomplete_uploads", "open_storage"]

SCHEMES = ("file", "s3")
"""The URL schemes a target may have (a plain path has none)."""

Target = str | os.PathLike[str] | Storage | Store
"""What a writer may be pointed at: a path, a ``file://`` or ``s3://`` URL, a storage, a zarr store."""

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


def open_storage(target: Target, storage_options: Mapping[str, Any] | None = None) -> Storage:
    """The storage at ``target``: a local directory, ``file:///abs/path``, ``s3://bucket/prefix``,
    or a zarr ``Store`` object (written through zarr's own ``Store`` API).

    ``storage_options`` configure an object store (``endpoint_url``, ``region``, ...: see
    :class:`~bluesky_zarr.storage.S3Storage`); they are an error with a local target, where they
    would mean nothing. A :class:`Storage` is taken as it is.

    Raises
    ------
    ConfigurationError
        The URL scheme is not one of :data:`SCHEMES`, or a ``file://`` URL names another host, or
        ``storage_options`` are given for a local path. Nothing has been written.
    """
    if isinstance(target, Store):
        if storage_options:
            raise ConfigurationError(
                f"storage_options were given with the zarr store {target!r}; configure the store itself"
            )
        return ZarrStoreStorage(target)
    if isinstance(target, Storage):
        if storage_options:
            raise ConfigurationError(
                f"storage_options were given with a storage object ({target!r}); configure the storage "
                "object itself instead"
            )
        return target
    text = os.fspath(target)
    match = _URL.match(text)
    scheme = match.group("scheme").lower() if match else ""
    if scheme == "s3":
        from ._s3 import S3Storage  # obstore is imported only for an s3:// target

        return S3Storage.from_url(text, storage_options)
    if scheme not in ("", "file"):
        raise ConfigurationError(
            f"{text!r}: the URL scheme {scheme!r} is not supported; nothing was written. Give a local path, "
            "a file:// URL or an s3:// URL (s3://bucket/prefix/, with storage_options={'endpoint_url': ...} "
            "for another S3-compatible server)"
        )
    if storage_options:
        raise ConfigurationError(
            f"storage_options ({', '.join(sorted(storage_options))}) were given for the local target "
            f"{text!r}; they configure an object store: use an s3:// URL, or leave them out"
        )
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise ConfigurationError(
                f"{text!r} names the host {parts.netloc!r}; a file:// URL must be local "
                "(file:///absolute/path); nothing was written"
            )
        return LocalStorage(Path(unquote(parts.path)))
    return LocalStorage(Path(text))


def abort_incomplete_uploads(
    target: str, *, storage_options: Mapping[str, Any] | None = None, older_than: float = 3600.0
) -> list[str]:
    """Abort the multipart uploads below ``s3://bucket/prefix/`` begun more than ``older_than``
    seconds ago, which a writer killed during one leaves behind (never visible as objects, but
    stored and billed); returns their URLs. Recent ones are left alone: they may be another
    writer's, still going. Needs boto3.

    A bucket lifecycle rule (``AbortIncompleteMultipartUpload``) does the same by itself.
    """
    storage = open_storage(target, storage_options)
    from ._s3 import S3Storage

    if not isinstance(storage, S3Storage):
        raise ConfigurationError(f"{target!r} is not an s3:// URL; only object stores have multipart uploads")
    return storage.abort_incomplete_uploads(older_than)

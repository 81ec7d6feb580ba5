"""What a writer is pointed at: a path, a URL, a :class:`Storage` or a zarr ``Store``, as a :class:`Storage`.

A URL's scheme picks the factory that makes its storage: ``file`` and ``s3`` are built in; any
other comes from :func:`register_storage`, or from an entry point in the group
``bluesky_zarr.storage`` named after the scheme (a package installed beside this one), so that
``"myscheme://..."`` works in every writer, in ``open_run`` and in ``finalize``. The target is
understood, and a target that cannot be written is refused, before anything is written: an
unknown URL scheme never becomes a local folder named after it (``./s3:/bucket``).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

from zarr.abc.store import Store

from .._errors import ConfigurationError
from ._base import Storage
from ._local import LocalStorage
from ._zarr_store import ZarrStoreStorage

__all__ = [
    "ENTRY_POINT_GROUP",
    "SCHEMES",
    "StorageFactory",
    "Target",
    "abort_incomplete_uploads",
    "open_storage",
    "register_storage",
    "storage_schemes",
]

SCHEMES = ("file", "s3")
"""The URL schemes built in (a plain path has none); :func:`storage_schemes` lists every known one."""

ENTRY_POINT_GROUP = "bluesky_zarr.storage"
"""The entry-point group of storage factories, each named after the URL scheme it serves."""

Target = str | os.PathLike[str] | Storage | Store
"""What a writer may be pointed at: a path, a URL, a storage, a zarr store."""

StorageFactory: TypeAlias = Callable[[str, Mapping[str, Any] | None], "Storage | Store"]
"""What makes the storage of a URL: ``factory(url, storage_options)`` gives a :class:`Storage`, or a
zarr ``Store`` (written through zarr's own ``Store`` API)."""

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_registered: dict[str, StorageFactory] = {}
_lock = threading.Lock()


def _check_scheme(scheme: object, what: str) -> str:
    if not isinstance(scheme, str) or not _SCHEME.match(scheme.lower()):
        raise ConfigurationError(
            f"{what}: {scheme!r} is not a URL scheme; give letters, digits, '+', '-' or '.', beginning "
            "with a letter (e.g. 'mylab'), without '://'"
        )
    scheme = scheme.lower()
    if scheme in SCHEMES:
        raise ConfigurationError(
            f"{what}: the URL scheme {scheme!r} is built in and cannot be replaced; choose a scheme of "
            "your own (e.g. 'mylab'), or pass your Storage object itself as the writer's target"
        )
    return scheme


def register_storage(scheme: str, factory: StorageFactory) -> None:
    """Make ``scheme://...`` targets mean the storage ``factory`` makes, in this process.

    Parameters
    ----------
    scheme
        The URL scheme (``"mylab"`` for ``"mylab://..."``), not one of :data:`SCHEMES`.
    factory
        ``factory(url, storage_options)`` -> a :class:`Storage`, or a zarr ``Store``. It is called
        with the whole URL each time a writer, ``open_run`` or ``finalize`` is given one; it should
        refuse a URL it cannot serve with a :class:`~bluesky_zarr.ConfigurationError` that says why.

    Notes
    -----
    A package makes a scheme known to every process where it is installed with an entry point
    instead (no import needed): in its ``pyproject.toml``, ``[project.entry-points."bluesky_zarr.storage"]``
    ``mylab = "mylab_storage:open_mylab"``. A scheme registered here wins over an entry point of
    the same name. A writer with ``worker="process"`` pickles the storage it made, not the URL.
    """
    scheme = _check_scheme(scheme, "register_storage")
    if not callable(factory):
        raise ConfigurationError(
            f"register_storage({scheme!r}, ...): {factory!r} is not callable; give a function "
            "factory(url, storage_options) that returns a Storage or a zarr Store"
        )
    with _lock:
        _registered[scheme] = factory


def _plugins() -> dict[str, Any]:
    """The entry points of the storage group, by scheme (the built-in schemes are not replaced)."""
    found: dict[str, Any] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        scheme = point.name.lower()
        if _SCHEME.match(scheme) and scheme not in SCHEMES:
            found.setdefault(scheme, point)
    return found


def storage_schemes() -> tuple[str, ...]:
    """Every URL scheme a target may have here: built in, registered, or from an entry point."""
    with _lock:
        registered = set(_registered)
    return (*SCHEMES, *sorted((registered | set(_plugins())) - set(SCHEMES)))


def _factory(scheme: str) -> StorageFactory | None:
    with _lock:
        if scheme in _registered:
            return _registered[scheme]
    point = _plugins().get(scheme)
    if point is None:
        return None
    where = f"the {ENTRY_POINT_GROUP} entry point {point.name!r} ({point.value})"
    try:
        factory = point.load()
    except Exception as error:  # a broken plug-in is the plug-in's error, named as such
        raise ConfigurationError(f"{where} cannot be loaded: {type(error).__name__}: {error}") from error
    if not callable(factory):
        raise ConfigurationError(f"{where} is {factory!r}, not a factory(url, storage_options)")
    with _lock:
        return _registered.setdefault(scheme, factory)


def _file(text: str, storage_options: Mapping[str, Any] | None) -> Storage:
    if storage_options:
        raise ConfigurationError(
            f"storage_options ({', '.join(sorted(storage_options))}) were given for the local target "
            f"{text!r}; they configure an object store: use an s3:// URL, or leave them out"
        )
    if not _URL.match(text):
        return LocalStorage(Path(text))
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(
            f"{text!r} names the host {parts.netloc!r}; a file:// URL must be local "
            "(file:///absolute/path); nothing was written"
        )
    return LocalStorage(Path(unquote(parts.path)))


def _s3(text: str, storage_options: Mapping[str, Any] | None) -> Storage:
    from ._s3 import S3Storage  # obstore is imported only for an s3:// target

    return S3Storage.from_url(text, storage_options)


_BUILT_IN: dict[str, StorageFactory] = {"": _file, "file": _file, "s3": _s3}


def _wrap(target: Storage | Store, storage_options: Mapping[str, Any] | None) -> Storage:
    what = "a storage object" if isinstance(target, Storage) else "the zarr store"
    if storage_options:
        raise ConfigurationError(
            f"storage_options were given with {what} {target!r}; configure the object itself instead"
        )
    return target if isinstance(target, Storage) else ZarrStoreStorage(target)


def open_storage(target: Target, storage_options: Mapping[str, Any] | None = None) -> Storage:
    """The storage at ``target``: a local directory, ``file:///abs/path``, ``s3://bucket/prefix``,
    ``scheme://...`` for a scheme of :func:`storage_schemes`, a :class:`Storage`, or a zarr
    ``Store`` object (written through zarr's own ``Store`` API).

    ``storage_options`` configure an object store (``endpoint_url``, ``region``, ...: see
    :class:`~bluesky_zarr.storage.S3Storage`), or are handed to a registered scheme's factory;
    they are an error with a local target, where they would mean nothing. A :class:`Storage` is
    taken as it is.

    Raises
    ------
    ConfigurationError
        The URL scheme is not one of :func:`storage_schemes`, or a ``file://`` URL names another
        host, or ``storage_options`` are given for a local path, or a scheme's factory refuses the
        URL or gives something that is not a storage. Nothing has been written.
    """
    if isinstance(target, Store | Storage):
        return _wrap(target, storage_options)
    text = os.fspath(target)
    match = _URL.match(text)
    scheme = match.group("scheme").lower() if match else ""
    factory = _BUILT_IN.get(scheme) or _factory(scheme)
    if factory is None:
        raise ConfigurationError(
            f"{text!r}: the URL scheme {scheme!r} is not one known here ({', '.join(storage_schemes())}); "
            "nothing was written. Give a local path, a file:// URL or an s3:// URL (s3://bucket/prefix/, "
            "with storage_options={'endpoint_url': ...} for another S3-compatible server); for a storage "
            f"of your own, register its factory with bluesky_zarr.storage.register_storage({scheme!r}, "
            f"factory), or install a package with a {ENTRY_POINT_GROUP!r} entry point named {scheme!r}"
        )
    made = factory(text, storage_options)
    if not isinstance(made, Storage | Store):
        raise ConfigurationError(
            f"{text!r}: the storage factory for {scheme!r} ({factory!r}) gave {made!r}, which is neither a "
            "bluesky_zarr.storage.Storage nor a zarr Store; nothing was written"
        )
    return made if isinstance(made, Storage) else ZarrStoreStorage(made)


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

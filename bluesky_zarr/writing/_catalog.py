"""Runs of a databroker catalog, as document streams for :func:`~bluesky_zarr.export`.

databroker 2.x serves its catalogs through Tiled: a catalog is a Tiled container of runs, each
of which gives back its documents (``run.documents()``), whether the catalog is served over HTTP
(``tiled.client.from_uri``, a Tiled profile, ``databroker.Broker.named``) or made in the process
(``databroker.temp()``). The v1 ``Broker`` API wraps the same catalog (``broker.v2``).
databroker is an optional dependency (``pip install bluesky-zarr[databroker]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .._errors import ConfigurationError, RunNotFoundError

__all__ = ["catalog_runs", "is_catalog", "open_catalog"]

Documents = Iterable[tuple[str, Any]]

CATALOG_PREFIX = "databroker:"
"""``databroker:NAME``: the catalog databroker's ``Broker.named(NAME)`` finds (a Tiled profile)."""


def is_catalog(source: str) -> bool:
    """Whether a command-line SOURCE names a catalog (a URL, ``databroker:NAME``) rather than files."""
    return source.startswith(("http://", "https://", CATALOG_PREFIX))


def open_catalog(source: str) -> Any:
    """The catalog a Tiled server URL (``http://host:port/path``) or ``databroker:NAME`` names.

    A server's API key comes from the environment (``TILED_API_KEY``), as Tiled's own clients take it.
    """
    try:
        if source.startswith(CATALOG_PREFIX):
            from databroker import Broker

            return Broker.named(source[len(CATALOG_PREFIX) :]).v2
        from tiled.client import from_uri

        return from_uri(source)
    except ImportError as err:
        raise ConfigurationError(
            f"reading the catalog {source} needs databroker 2.x: pip install 'bluesky-zarr[databroker]'"
        ) from err


def catalog_runs(
    catalog: Any, uids: Sequence[str] = (), search: Sequence[tuple[str, Any]] = ()
) -> Iterator[tuple[str, Callable[[], Documents]]]:
    """``(uid, documents)`` for each run of ``catalog`` chosen, in the catalog's order.

    ``catalog`` is a databroker 2.x catalog (a Tiled container of runs) or a v1 ``Broker``.
    ``uids`` chooses runs by uid (or the beginning of one, or a scan id, as the catalog allows);
    ``search`` keeps runs whose start document holds each ``(key, value)``; neither: every run.
    ``documents()`` fetches a run's documents when called, so a large catalog streams, and a run
    that is not there fails alone (a :class:`~bluesky_zarr.RunNotFoundError`).
    """
    catalog = getattr(catalog, "v2", catalog)  # a v1 Broker wraps the catalog
    if search:
        from tiled.queries import Key

        for key, value in search:
            catalog = catalog.search(Key(key) == value)
    for uid in list(uids) if uids else list(catalog):
        yield str(uid), _documents_of(catalog, str(uid))


def _documents_of(catalog: Any, uid: str) -> Callable[[], Documents]:
    """The documents of one run, fetched when called: a missing run fails alone."""

    def documents() -> Documents:
        try:
            run = catalog[uid]
        except KeyError:
            raise RunNotFoundError(f"the catalog has no run {uid!r}") from None
        return run.documents()  # type: ignore[no-any-return]

    return documents

"""Finishing a store whose writer stopped before the run's end (killed, crashed, out of disk).

What such a store holds is already true: every chunk a shape or the ``written`` mask shows was on
disk before it was shown. What it lacks is the end: the root still says ``running``, the metadata
is not consolidated, and a 1-D stream cut between two of its arrays' ``zarr.json`` may publish
lengths that differ by a row or two (which xarray refuses). Finishing it:

1. removes the writer's hidden working files (objects never made visible, a widening left half
   way: the array is put back as it was, and the note says which readings that leaves out);
2. gives every array of a 1-D group the common length: rows that only some arrays published are
   not vouched for by the others, so they are left out;
3. writes the root, consolidated, with ``status = "incomplete"`` and ``finalized``, data first.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from ..._encoding import attribute, decode_attributes
from ..._errors import CorruptDataError, RunNotFoundError
from ...storage import Storage
from .._format import Finalized, finalized_by
from ._metadata import consolidated_root, dumps

__all__ = ["finalize_store"]


def finalize_store(storage: Storage) -> Finalized:
    """Finish the Zarr store at ``storage`` (see the module docstring); idempotent."""
    raw = storage.get("zarr.json")
    if raw is None:
        raise RunNotFoundError(f"{storage.location} holds no zarr.json: it is not a run's Zarr store")
    root = _load(storage, "zarr.json", raw)
    attrs = dict(root.get("attributes") or {})
    status = str(attrs.get("status"))
    if status != "running":
        return Finalized(storage.location, "zarr", status, changed=False)
    notes: list[str] = []
    nodes: dict[str, dict[str, Any]] = {}
    _collect(storage, "", nodes, notes)
    for group, document in nodes.items():
        if document["node_type"] == "group" and "grid" not in document.get("attributes", {}):
            _one_length(storage, group, nodes, notes)
    storage.sync()  # the data and every array's metadata before the root that vouches for them
    attrs["status"] = "incomplete"
    attrs["finalized"] = attribute({**finalized_by(), "notes": notes})
    storage.put("zarr.json", consolidated_root(attrs, nodes), durable=True)
    storage.sync()
    return Finalized(storage.location, "zarr", "incomplete", changed=True, notes=tuple(notes))


def _load(storage: Storage, key: str, raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError as err:
        raise CorruptDataError(f"{storage.describe(key)} is not JSON ({err}); the store was damaged") from err
    if not isinstance(document, dict) or document.get("zarr_format") != 3:
        raise CorruptDataError(f"{storage.describe(key)} is not Zarr v3 metadata; the store was damaged")
    return document


def _collect(storage: Storage, group: str, nodes: dict[str, dict[str, Any]], notes: list[str]) -> None:
    """The metadata of every node below ``group``; the writer's working files are cleaned up."""
    names = storage.list(group)
    for name in names:
        key = posixpath.join(group, name) if group else name
        if name.startswith("."):
            _clean_up(storage, group, name, names, notes)
            continue
        if name == "zarr.json":
            continue
        raw = storage.get(f"{key}/zarr.json")
        if raw is None:  # a chunk, or a folder no metadata names
            continue
        document = _load(storage, f"{key}/zarr.json", raw)
        nodes[key] = document
        if document.get("node_type") == "group":
            _collect(storage, key, nodes, notes)


def _clean_up(storage: Storage, group: str, name: str, names: list[str], notes: list[str]) -> None:
    key = posixpath.join(group, name) if group else name
    if name.endswith(".retired"):  # killed between moving an array aside and its widened copy in
        array = name[1 : -len(".retired")]
        if array not in names:
            storage.rename(key, posixpath.join(group, array) if group else array)
            notes.append(
                f"{posixpath.join(group, array)}: a widening to a wider dtype was cut short; the array "
                "is back as it was, without the readings that came during the widening"
            )
            return
    if name.endswith((".partial", ".widening", ".retired")):
        storage.delete(key)


def _one_length(storage: Storage, group: str, nodes: dict[str, dict[str, Any]], notes: list[str]) -> None:
    """Give the arrays of a 1-D group the length every one of them published."""
    arrays = {
        path: document
        for path, document in nodes.items()
        if posixpath.dirname(path) == group and document["node_type"] == "array" and document["shape"]
    }
    if not arrays:
        return
    length = min(document["shape"][0] for document in arrays.values())
    for path, document in arrays.items():
        published = document["shape"][0]
        if published != length:
            document["shape"] = [length, *document["shape"][1:]]
            storage.put(f"{path}/zarr.json", dumps(document))
            name = decode_attributes(document.get("attributes", {})).get("data_key", posixpath.basename(path))
            notes.append(
                f"{path}: {published - length} row(s) of {name!r} that the stream's other arrays never "
                f"published are left out; every array of {group!r} now has {length}"
            )

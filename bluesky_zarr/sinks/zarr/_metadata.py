"""The ``zarr.json`` documents of a store: arrays, groups, and the consolidated root.

Written as plain JSON following the Zarr v3 specification (and zarr-python's consolidated
metadata, which xarray reads to open a store in one request), so they do not depend on the
internals of any one zarr-python release. Stock readers (zarr-python 3.1 to the newest 3.x,
tensorstore, xarray) read them; the test suite checks each.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..._encoding import attribute
from ...storage import Storage
from ._layout import ArraySpec
from ._shards import index_codecs

__all__ = ["Nodes", "array_document", "consolidated_root", "dumps", "group_document"]

CHUNK_KEY_ENCODING: dict[str, Any] = {"name": "default", "configuration": {"separator": "."}}
"""Chunk keys ``c.0.1.0.0``: all of an array's chunks in one directory, so writing a chunk never
has to create directories (with ``/`` every frame of a grid scan made one or more)."""

_DATA_TYPES = {
    "b": "bool",
    "i1": "int8", "i2": "int16", "i4": "int32", "i8": "int64",
    "u1": "uint8", "u2": "uint16", "u4": "uint32", "u8": "uint64",
    "f2": "float16", "f4": "float32", "f8": "float64",
}  # fmt: skip


def data_type(dtype: np.dtype[Any]) -> str:
    """The Zarr v3 ``data_type`` of a numpy dtype; text is ``string`` (variable-length UTF-8)."""
    if dtype.kind in "SUO":
        return "string"
    return _DATA_TYPES["b" if dtype.kind == "b" else f"{dtype.kind}{dtype.itemsize}"]


def _fill_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def dumps(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, indent=2, allow_nan=False).encode()


def array_document(spec: ArraySpec, shape: tuple[int, ...]) -> dict[str, Any]:
    """The ``zarr.json`` of an array of ``spec`` with the current ``shape``, as a dict."""
    codecs = spec.codecs.to_json()
    chunk_shape = spec.chunks
    if spec.shards is not None:
        chunk_shape = spec.shards
        codecs = [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": list(spec.chunks),
                    "codecs": codecs,
                    "index_codecs": index_codecs(),
                    "index_location": "start",
                },
            }
        ]
    # the dimension names twice: Zarr v3's own field, and the attribute xarray's Zarr v2 path reads
    attrs = {**_attributes(spec.attrs), "_ARRAY_DIMENSIONS": list(spec.dims)}
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": data_type(spec.dtype),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunk_shape)}},
        "chunk_key_encoding": CHUNK_KEY_ENCODING,
        "fill_value": _fill_value(spec.fill_value),
        "codecs": codecs,
        "attributes": attrs,
        "dimension_names": list(spec.dims),
        "storage_transformers": [],
    }


def group_document(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {"zarr_format": 3, "node_type": "group", "attributes": _attributes(attrs)}


def _attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes as NetCDF holds them too (nested values as JSON text), so a store exports as it is."""
    return {key: attribute(value) for key, value in attrs.items()}


def consolidated_root(attrs: Mapping[str, Any], nodes: Mapping[str, Mapping[str, Any]]) -> bytes:
    """The root ``zarr.json`` holding every node's metadata (zarr-python's inline consolidated form).

    ``nodes`` maps each node's path below the root (``"primary"``, ``"primary/time"``) to its
    ``zarr.json`` as a dict.
    """
    empty = {"kind": "inline", "must_understand": False, "metadata": {}}
    metadata = {
        path: {**node, "consolidated_metadata": empty} if node.get("node_type") == "group" else dict(node)
        for path, node in sorted(nodes.items())
    }
    root = {
        **group_document(attrs),
        "consolidated_metadata": {"kind": "inline", "must_understand": False, "metadata": metadata},
    }
    return dumps(root)


class Nodes:
    """Writes the ``zarr.json`` of each node of a store, and remembers the latest of each.

    The root is always written consolidated, with every other node's metadata inline, made from
    what was written without reading the store back. It is the store's one commit point: a reader
    that opens the store through it (xarray and zarr-python do by default) sees one moment of the
    run, every array of a 1-D stream with the same length, even while node documents after it are
    being written or after the writer was killed among them. ``commit`` writes it; ``root_attrs``
    gives its attributes.
    """

    def __init__(self, storage: Storage, root_attrs: Callable[[], Mapping[str, Any]]) -> None:
        self.storage = storage
        self.root_attrs = root_attrs
        self.documents: dict[str, dict[str, Any]] = {}
        self.changed = True
        """Whether a node changed since the last commit."""

    def put(self, path: str, document: dict[str, Any]) -> None:
        """Write the ``zarr.json`` of the node at ``path`` below the root; seen by readers of the
        consolidated root from the next ``commit``."""
        self.storage.put(f"{path}/zarr.json", dumps(document))
        self.documents[path] = document
        self.changed = True

    def forget(self, path: str) -> None:
        """Leave the array at ``path`` out of the consolidated root at once (it is being replaced)."""
        self.documents.pop(path, None)
        self.commit()

    def commit(self, *, durable: bool = False) -> None:
        """Write the root: its attributes, and every node's metadata as last put."""
        self.storage.put("zarr.json", consolidated_root(self.root_attrs(), self.documents), durable=durable)
        self.changed = False

"""What a run's output holds, read from the files alone: a Zarr store, an HDF5 file, or a Parquet /
Arrow IPC / CSV run directory. Read-only, and safe on a run that is still being written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import zarr

from .._encoding import decode_attributes
from .._errors import RunNotFoundError
from .._naming import HDF5_SUFFIXES, SCHEMA_PART, live_part_names

__all__ = ["inspect_run"]

_RUN_KEYS = ("status", "errors", "quarantined", "gaps")
_TABLE_SUFFIXES = (".parquet", ".arrows", ".csv")
_HDF5_FILTERS = {"32004": "lz4", "32015": "zstd", "32001": "blosc"}
"""HDF5 plugin filters (hdf5plugin) by their registered id"""


def inspect_run(path: str | Path) -> dict[str, Any]:
    """A summary of one run's output, as plain JSON-ready data.

    ``format`` (``"zarr"``, ``"hdf5"`` or ``"tables"``), ``uid``, ``plan_name``, ``status``,
    ``errors``, ``quarantined``, ``gaps`` (stream -> ``[first, last]`` seq_nums of events that never
    reached the writer), and per stream: ``grid`` (dims and shape) with ``points`` and
    ``points_written`` (from the ``written`` mask), or ``events`` along ``time``; and per array or
    column: data key, dims, shape, dtype, chunks, shards, codecs and bytes on disk.

    Raises
    ------
    RunNotFoundError
        ``path`` is neither a Zarr v3 store, nor an HDF5 file, nor a directory of Parquet, Arrow
        IPC or CSV stream files.
    """
    path = Path(path)
    if (path / "zarr.json").is_file():
        return _zarr(path)
    if path.suffix in HDF5_SUFFIXES and path.is_file():
        return _hdf5(path)
    if path.is_dir() and any(
        p.suffix in _TABLE_SUFFIXES or p.name.endswith(".parquet.parts") for p in path.iterdir()
    ):
        return _tables(path)
    raise RunNotFoundError(
        f"{path} is neither a run's Zarr store (<run>.zarr with a zarr.json), nor its HDF5 file "
        "(<run>.h5), nor its table directory (<run>/ holding <stream>.parquet, .arrows or .csv)"
    )


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _bytes_under(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _codec_names(codecs: list[dict[str, Any]]) -> list[str]:
    names = []
    for codec in codecs:
        name, config = codec.get("name", "?"), codec.get("configuration") or {}
        if name == "blosc":
            name = f"blosc {config.get('cname')} {config.get('shuffle')} {config.get('clevel')}"
        elif name in ("zstd", "gzip"):
            name = f"{name} {config.get('level')}"
        elif name == "numcodecs.bitround":
            name = f"bitround {config.get('keepbits')}"
        elif name == "transpose":
            name = f"transpose {list(config.get('order') or [])}"
        if name != "bytes":
            names.append(name)
    return names


def _zarr_array(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
    codecs = meta.get("codecs") or []
    shards = None
    if codecs and codecs[0].get("name") == "sharding_indexed":
        shards, chunks = chunks, codecs[0]["configuration"]["chunk_shape"]
        codecs = codecs[0]["configuration"]["codecs"]
    key = decode_attributes(meta.get("attributes") or {}).get("data_key")
    return {
        "data_key": key.get("name") if isinstance(key, dict) else None,
        "dims": meta.get("dimension_names"),
        "shape": meta["shape"],
        "dtype": meta["data_type"],
        "chunks": chunks,
        "shards": shards,
        "codecs": _codec_names(codecs),
        "bytes": _bytes_under(path),
    }


def _zarr(store: Path) -> dict[str, Any]:
    nodes = {p.parent: _json(p) for p in sorted(store.rglob("zarr.json"))}  # every node's, read once
    attrs = decode_attributes(nodes[store].get("attributes") or {})
    start = attrs.get("start") or {}
    summary: dict[str, Any] = {
        "path": str(store),
        "format": "zarr",
        "uid": start.get("uid"),
        "plan_name": start.get("plan_name"),
        **{k: attrs.get(k) for k in _RUN_KEYS},
        "bytes": _bytes_under(store),
        "streams": {},
    }
    for group, meta in nodes.items():
        if group == store or meta["node_type"] != "group":
            continue
        stream: dict[str, Any] = {}
        grid = decode_attributes(meta.get("attributes") or {}).get("grid")
        arrays = {
            path.name: _zarr_array(path, node)
            for path, node in nodes.items()
            if path.parent == group and node["node_type"] == "array"
        }
        if isinstance(grid, dict):
            stream["grid"] = {"dims": grid.get("dims"), "shape": grid.get("shape")}
            stream["points"] = int(np.prod(grid.get("shape") or []))
            if "written" in arrays:
                mask = zarr.open_array(str(group / "written"), mode="r")[...]
                stream["points_written"] = int(np.count_nonzero(mask))
        elif "time" in arrays:
            stream["events"] = int(arrays["time"]["shape"][0])
        stream["arrays"] = arrays
        summary["streams"][group.relative_to(store).as_posix()] = stream
    return summary


def _table_metadata(schema: pa.Schema) -> dict[str, Any]:
    raw = schema.metadata or {}
    return {k.decode(): json.loads(v) for k, v in raw.items() if k.decode() in (*_RUN_KEYS, "start", "grid")}


def _columns(schema: pa.Schema) -> dict[str, Any]:
    columns = {}
    for field in schema:
        kind = field.type
        shape = None
        if isinstance(kind, pa.FixedShapeTensorType):
            shape, kind = list(kind.shape), kind.value_type
        columns[field.name] = {"dtype": str(kind), "shape": shape}
    return columns


def _parts_schema(last: Path) -> pa.Schema:
    """The schema of a stream's last part, with the documents of the schema part it names."""
    schema = pq.read_schema(last)
    metadata = dict(schema.metadata or {})
    schema_part = metadata.pop(SCHEMA_PART.encode(), None)
    if schema_part is None:  # a part of an older writer holds the documents itself
        return schema
    documents = pq.read_schema(last.parent / json.loads(schema_part)).metadata or {}
    return schema.with_metadata({**documents, **metadata})


def _tables(directory: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {"path": str(directory), "format": "tables", "streams": {}}
    run: dict[str, Any] = {}
    for path in sorted(directory.iterdir()):
        stream: dict[str, Any]
        if path.suffix == ".parquet" and path.is_file():
            schema = pq.read_schema(path)
            stream = {"file": path.name, "rows": pq.ParquetFile(path).metadata.num_rows}
        elif path.name.endswith(".parquet.parts") and path.is_dir():
            parts = [path / name for name in live_part_names(p.name for p in path.iterdir())]
            if not parts:
                continue
            schema = _parts_schema(parts[-1])
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
            stream = {"file": path.name, "rows": rows, "unmerged_parts": len(parts)}
        elif path.suffix == ".arrows" and path.is_file() and path.stem.count(".") == 0:
            schema, rows, end = _arrow_stream(path)
            stream = {"file": path.name, "rows": rows}
            run.update(end)
        elif path.suffix == ".csv" and path.is_file():
            schema, rows = _csv(path)
            stream = {"file": path.name, "rows": rows}
        else:
            continue
        metadata = _table_metadata(schema)
        for key, value in metadata.items():
            run.setdefault(key, value)
        if "grid" in metadata and isinstance(metadata["grid"], dict):
            stream["grid"] = {"dims": metadata["grid"].get("dims"), "shape": metadata["grid"].get("shape")}
        stream["bytes"] = _bytes_under(path) if path.is_dir() else path.stat().st_size
        stream["columns"] = _columns(schema)
        summary["streams"][path.name.split(".")[0]] = stream
    start = run.get("start") or {}
    summary.update(uid=start.get("uid"), plan_name=start.get("plan_name"))
    summary.update({k: run.get(k) for k in _RUN_KEYS})
    summary["bytes"] = _bytes_under(directory)
    return summary


def _arrow_stream(path: Path) -> tuple[pa.Schema, int, dict[str, Any]]:
    """Schema, rows and the run's end (the last batch's custom metadata) of an Arrow IPC stream,
    following its continuation files; a stream still being written is read as far as it goes."""
    rows, end = 0, {}
    schema = None
    while True:
        following = None
        with pa.OSFile(str(path)) as source:
            reader = pa.ipc.open_stream(source)
            schema = schema or reader.schema
            try:
                while True:
                    batch, custom = reader.read_next_batch_with_custom_metadata()
                    rows += batch.num_rows
                    meta = {k.decode(): v.decode() for k, v in (custom or {}).items()}
                    if "continued_in" in meta:
                        following = json.loads(meta["continued_in"])
                    end.update({k: json.loads(meta[k]) for k in _RUN_KEYS if k in meta})
            except (StopIteration, pa.ArrowInvalid, OSError):
                pass
        if following is None:
            return schema, rows, end
        path = path.with_name(following)


def _csv(path: Path) -> tuple[pa.Schema, int]:
    """The columns (as pyarrow reads the first rows) and the whole rows of a CSV stream file."""
    with path.open("rb") as file:
        rows = sum(block.count(b"\n") for block in iter(lambda: file.read(1 << 20), b"")) - 1
    with pacsv.open_csv(path) as reader:
        return reader.schema, max(rows, 0)


def _dimension(dataset: h5py.Dataset, axis: int) -> str:
    """The name of the dimension scale attached to an axis (a scale is its own dimension)."""
    scales = dataset.dims[axis]
    node = scales[0] if len(scales) else dataset if dataset.is_scale else None
    return node.name.rsplit("/", 1)[-1] if node is not None else f"axis_{axis}"


def _hdf5_dataset(dataset: h5py.Dataset) -> dict[str, Any]:
    key = decode_attributes(dataset.attrs).get("data_key")
    filters = [  # in the order the pipeline applies them; h5py's only list of them is _filters
        f"gzip {options}" if name == "gzip" else _HDF5_FILTERS.get(str(name), str(name))
        for name, options in dataset._filters.items()
    ]
    return {
        "data_key": key.get("name") if isinstance(key, dict) else None,
        "dims": [_dimension(dataset, i) for i in range(dataset.ndim)],
        "shape": list(dataset.shape),
        "dtype": str(dataset.dtype),
        "chunks": list(dataset.chunks) if dataset.chunks else None,
        "shards": None,
        "codecs": filters,
        "bytes": int(dataset.id.get_storage_size()),
    }


def _hdf5(path: Path) -> dict[str, Any]:
    with h5py.File(path, "r", swmr=True) as h5:  # a file being written, or left by a killed writer
        attrs = decode_attributes(h5.attrs)
        start = attrs.get("start") or {}
        summary: dict[str, Any] = {
            "path": str(path),
            "format": "hdf5",
            "uid": start.get("uid"),
            "plan_name": start.get("plan_name"),
            **{k: attrs.get(k) for k in _RUN_KEYS},
            "bytes": path.stat().st_size,
            "streams": {},
        }
        groups: list[tuple[str, h5py.Group]] = []
        entry = h5.get("entry")
        if isinstance(entry, h5py.Group):
            entry.visititems(
                lambda name, node: groups.append((name, node)) if isinstance(node, h5py.Group) else None
            )
        for name, group in groups:
            datasets = {k: v for k, v in group.items() if isinstance(v, h5py.Dataset)}
            stream: dict[str, Any] = {}
            grid = decode_attributes(group.attrs).get("grid")
            if isinstance(grid, dict):
                stream["grid"] = {"dims": grid.get("dims"), "shape": grid.get("shape")}
                stream["points"] = int(np.prod(grid.get("shape") or []))
                if "written" in datasets:
                    stream["points_written"] = int(np.count_nonzero(datasets["written"][...]))
            elif "seq_num" in datasets:
                stream["events"] = len(datasets["seq_num"])  # what seq_num vouches for
            stream["arrays"] = {k: _hdf5_dataset(d) for k, d in datasets.items()}
            summary["streams"][name] = stream
    return summary

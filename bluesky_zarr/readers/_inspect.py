"""What a run's output holds, read from the files alone: a Zarr store, or a Parquet / Arrow IPC run
directory. Read-only, and safe on a run that is still being written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from .._encoding import decode_attributes
from .._errors import RunNotFoundError

__all__ = ["inspect_run"]

_RUN_KEYS = ("status", "errors", "quarantined", "gaps")


def inspect_run(path: str | Path) -> dict[str, Any]:
    """A summary of one run's output, as plain JSON-ready data.

    ``format`` (``"zarr"`` or ``"tables"``), ``uid``, ``plan_name``, ``status``, ``errors``,
    ``quarantined``, ``gaps`` (stream -> ``[first, last]`` seq_nums of events that never reached
    the writer), and per stream: ``grid`` (dims and shape) with ``points`` and
    ``points_written`` (from the ``written`` mask), or ``events`` along ``time``; and per array or
    column: data key, dims, shape, dtype, chunks, shards, codecs and bytes on disk.

    Raises
    ------
    RunNotFoundError
        ``path`` is neither a Zarr v3 store nor a directory of Parquet or Arrow IPC stream files.
    """
    path = Path(path)
    if (path / "zarr.json").is_file():
        return _zarr(path)
    if path.is_dir() and any(path.glob("*.parquet*")) | any(path.glob("*.arrows")):
        return _tables(path)
    raise RunNotFoundError(
        f"{path} is neither a run's Zarr store (<run>.zarr with a zarr.json) nor its table directory "
        "(<run>/ holding <stream>.parquet or <stream>.arrows)"
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


def _tables(directory: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {"path": str(directory), "format": "tables", "streams": {}}
    run: dict[str, Any] = {}
    for path in sorted(directory.iterdir()):
        stream: dict[str, Any]
        if path.suffix == ".parquet" and path.is_file():
            schema = pq.read_schema(path)
            stream = {"file": path.name, "rows": pq.ParquetFile(path).metadata.num_rows}
        elif path.name.endswith(".parquet.parts") and path.is_dir():
            parts = sorted(path.glob("*.parquet"))
            if not parts:
                continue
            schema = pq.read_schema(parts[-1])
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
            stream = {"file": path.name, "rows": rows, "unmerged_parts": len(parts)}
        elif path.suffix == ".arrows" and path.is_file() and path.stem.count(".") == 0:
            schema, rows, end = _arrow_stream(path)
            stream = {"file": path.name, "rows": rows}
            run.update(end)
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

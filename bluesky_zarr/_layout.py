"""From documents to the on-disk layout: pure functions, no I/O.

A start document says whether a run is a grid (``shape``, ``snaking``, setpoints) and a descriptor
says what each data key is (``dtype_numpy``, ``shape``, ``dims``, ``units``). This module turns
them into a :class:`StreamLayout`: the arrays of one stream with their names, dimensions, shapes,
chunks, dtypes and attributes. The writers only carry out what the layout says.

The start-document keys read here are bluesky's own (``shape``, ``snaking``, ``motors``,
``plan_pattern``/``plan_pattern_args``, ``hints``) and, when present, the ``grid`` key that
:mod:`bluesky_zarr.plans` writes::

    start["grid"] = {
        "dims": ["wavelength", "position"],
        "setpoints": {"wavelength": [700.0, ...], "position": [0.0, ...]},
        "units": {"wavelength": "nm", "position": "mm"},
        "readbacks": {"wavelength": ["laser_wavelength"], "position": ["stage_position"]},
    }
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ._chunking import FRAME_BYTES, ZarrOptions, event_chunks, resolve_chunks, resolve_shards
from ._encoding import JSONValue, to_json
from ._errors import DocumentError
from .codecs import IMAGE_DEFAULT, CodecChain, resolve_codecs

__all__ = [
    "ArraySpec",
    "Grid",
    "GridAxis",
    "StreamLayout",
    "grid_from_start",
    "overflow_layout",
    "stream_layout",
]

EVENT_DIM = "time"
"""The dimension of a stream that is not on a grid: one entry per event, in arrival order."""

OVERFLOW_GROUP = "overflow"
TIME, SEQ_NUM, WRITTEN = "time", "seq_num", "written"

Role = Literal["data", "readback", "setpoint", "time", "seq_num", "written"]


@dataclass(frozen=True)
class GridAxis:
    """One axis of a grid scan.

    ``setpoints`` is ``None`` when the start document does not say them; ``relative`` is true for
    ``rel_*`` plans, whose setpoints are offsets from where the motor started.
    """

    dim: str
    setpoints: tuple[float, ...] | None = None
    units: str | None = None
    readbacks: tuple[str, ...] = ()
    relative: bool = False


@dataclass(frozen=True)
class Grid:
    """The grid of a scan: axes outer first, and which axes snake."""

    axes: tuple[GridAxis, ...]
    shape: tuple[int, ...]
    snaking: tuple[bool, ...]
    streams: tuple[str, ...] = ("primary",)

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(axis.dim for axis in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def indices(self, seq_nums: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid indices of events by ``seq_num`` (1-based, in the order bluesky moves).

        Returns ``(inside, index)``: a boolean mask of the events that fall on the grid, and an
        ``(n_inside, ndim)`` integer array of their indices, with bluesky's snaking applied.
        """
        linear = np.asarray(seq_nums, dtype=np.int64) - 1
        inside = (linear >= 0) & (linear < self.size)
        linear = linear[inside]
        index = np.stack(np.unravel_index(linear, self.shape), axis=1).astype(np.int64)
        for axis in range(1, len(self.shape)):
            if self.snaking[axis]:
                passes = linear // math.prod(self.shape[axis:])
                odd = passes % 2 == 1
                index[odd, axis] = self.shape[axis] - 1 - index[odd, axis]
        return inside, index


@dataclass(frozen=True)
class ArraySpec:
    """One array of a stream group: everything needed to create it, nothing about writing it."""

    name: str
    role: Role
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill_value: Any
    attrs: dict[str, JSONValue]
    reading_shape: tuple[int, ...] = ()
    """The shape of one reading: the trailing part of ``shape``."""
    data_key: str | None = None
    values: np.ndarray | None = field(default=None, compare=False)
    """Values known from the documents alone (setpoint coordinates), written when created."""
    codecs: CodecChain | None = None
    """How each chunk is encoded; ``None`` is the plain serializer alone."""
    shards: tuple[int, ...] | None = None
    """The shape of one shard (a multiple of ``chunks``), or ``None`` when chunks are objects."""

    @property
    def event_ndim(self) -> int:
        """How many leading dimensions index events (the grid's, or the one event dimension)."""
        return len(self.dims) - len(self.reading_shape)


@dataclass(frozen=True)
class StreamLayout:
    """The arrays of one stream; ``grid`` is ``None`` for streams that grow along ``time``."""

    name: str
    grid: Grid | None
    arrays: dict[str, ArraySpec]
    keys: dict[str, str]
    """data key -> array name"""
    descriptors: tuple[Mapping[str, Any], ...]
    external: dict[str, str] = field(default_factory=dict)
    """data key -> its ``external`` spec, for keys whose events hold datum ids until filled"""


# --- the grid ------------------------------------------------------------------------------------

_MOTOR_NAME = re.compile(r"name='([^']*)'")


def _positive_ints(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, list | tuple) or not value:
        return None
    try:
        ints = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        return None
    if any(i < 1 or i != v for i, v in zip(ints, value, strict=True)):
        return None
    return ints


def _pattern_axes(start: Mapping[str, Any]) -> list[tuple[str | None, list[float], bool | None]]:
    """Parse ``plan_pattern_args`` of bluesky's grid plans: (motor name, setpoints, snake flag)."""
    pattern = start.get("plan_pattern")
    args = (start.get("plan_pattern_args") or {}).get("args")
    if not isinstance(args, list | tuple):
        return []
    axes: list[tuple[str | None, list[float], bool | None]] = []
    items = list(args)
    while items:
        motor = items.pop(0)
        if not isinstance(motor, str):
            return []
        found = _MOTOR_NAME.search(motor)
        name = found.group(1) if found else None
        if pattern == "outer_list_product" and items:
            values = items.pop(0)
            if not isinstance(values, list | tuple):
                return []
            axes.append((name, [float(v) for v in values], None))
        elif pattern == "outer_product" and len(items) >= 3:
            first, last, num = items[:3]
            del items[:3]
            snake = None
            if items and isinstance(items[0], bool):
                snake = items.pop(0)
            axes.append((name, [float(v) for v in np.linspace(first, last, int(num))], snake))
        else:
            return []
    return axes


def _snaking(start: Mapping[str, Any], ndim: int, motors: Sequence[str]) -> tuple[bool, ...]:
    snaking = start.get("snaking")
    if isinstance(snaking, list | tuple) and len(snaking) == ndim:
        return tuple(bool(s) for s in snaking)
    # list_grid_scan keeps only repr(snake_axes): "True", "False" or a list of motor reprs
    text = str((start.get("plan_pattern_args") or {}).get("snake_axes", start.get("snake_axes", "")))
    if text == "True":
        return (False,) + (True,) * (ndim - 1)
    named = set(_MOTOR_NAME.findall(text))
    return tuple(i > 0 and m in named for i, m in enumerate(motors)) + (False,) * (ndim - len(motors))


def _grid_streams(start: Mapping[str, Any]) -> tuple[str, ...]:
    hints = start.get("hints") or {}
    streams = {d[1] for d in hints.get("dimensions", ()) if isinstance(d, list | tuple) and len(d) == 2}
    return tuple(sorted(s for s in streams if isinstance(s, str))) or ("primary",)


def grid_from_start(start: Mapping[str, Any]) -> Grid | None:
    """The grid a start document declares, or ``None`` when the run is not a grid scan."""
    shape = _positive_ints(start.get("shape"))
    if shape is None:
        return None
    ndim = len(shape)
    declared = start.get("grid") if isinstance(start.get("grid"), Mapping) else None
    motors = [str(m) for m in start.get("motors") or ()]
    relative = str(start.get("plan_name", "")).startswith("rel_")
    axes: list[GridAxis] = []
    if declared is not None and len(declared.get("dims") or ()) == ndim:
        for dim in declared["dims"]:
            setpoints = (declared.get("setpoints") or {}).get(dim)
            readbacks = (declared.get("readbacks") or {}).get(dim) or ()
            axes.append(
                GridAxis(
                    dim=str(dim),
                    setpoints=tuple(float(v) for v in setpoints) if setpoints is not None else None,
                    units=(declared.get("units") or {}).get(dim),
                    readbacks=tuple(str(r) for r in readbacks),
                    relative=relative,
                )
            )
    else:
        parsed = _pattern_axes(start)
        names = motors if len(motors) == ndim else [name or "" for name, _, _ in parsed]
        if len(names) != ndim or not all(names) or len(set(names)) != ndim:
            names = [f"dim_{i}" for i in range(ndim)]
        for i, dim in enumerate(names):
            setpoints = parsed[i][1] if len(parsed) == ndim else None
            axes.append(
                GridAxis(
                    dim=dim,
                    setpoints=tuple(setpoints) if setpoints is not None else None,
                    readbacks=(dim,) if dim in motors else (),
                    relative=relative,
                )
            )
    axes = [
        replace(axis, setpoints=None) if axis.setpoints is not None and len(axis.setpoints) != n else axis
        for axis, n in zip(axes, shape, strict=True)
    ]
    return Grid(
        axes=tuple(axes),
        shape=shape,
        snaking=_snaking(start, ndim, motors or [a.dim for a in axes]),
        streams=_grid_streams(start),
    )


# --- arrays --------------------------------------------------------------------------------------

_JSON_DTYPES = {"number": "float64", "integer": "int64", "boolean": "bool", "string": "str"}


def _safe_name(name: str) -> str:
    name = name.replace("/", "_")
    if name in {"", ".", ".."} or name.startswith("__"):
        name = f"key_{name.strip('_.')}"
    return name


def reading_dtype(key: str, data_key: Mapping[str, Any], stream: str) -> np.dtype[Any]:
    """The numpy dtype of a data key: ``dtype_numpy`` when given, else from the JSON ``dtype``."""
    numpy_dtype = data_key.get("dtype_numpy")
    try:
        if isinstance(numpy_dtype, str) and numpy_dtype:
            dtype = np.dtype(numpy_dtype)
        else:
            dtype = np.dtype(_JSON_DTYPES.get(str(data_key.get("dtype")), "float64"))
    except TypeError as err:
        raise DocumentError(
            f"data key {key!r} of stream {stream!r}: dtype_numpy {numpy_dtype!r} is not a numpy dtype "
            "this writer can store; describe() it as a plain numeric dtype such as '<u2'"
        ) from err
    if dtype.kind in "SUO":
        return np.dtype(str)
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise DocumentError(
            f"data key {key!r} of stream {stream!r} has dtype {dtype}; only booleans, integers, floats "
            "and text are stored"
        )
    return dtype


def _fill_value(dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "f":
        return float("nan")
    if dtype.kind == "b":
        return False
    if dtype.kind in "SUO":
        return ""
    return 0


def _reading_nbytes(dtype: np.dtype[Any], shape: tuple[int, ...]) -> int:
    itemsize = dtype.itemsize if dtype.kind not in "SUO" else 16
    return max(1, itemsize * math.prod(shape))


def _array(
    name: str,
    role: Role,
    layout_dims: tuple[str, ...],
    event_shape: tuple[int, ...],
    reading_dims: tuple[str, ...],
    reading_shape: tuple[int, ...],
    dtype: np.dtype[Any],
    attrs: dict[str, JSONValue],
    data_key: str | None = None,
    options: ZarrOptions | None = None,
    where: str = "",
) -> ArraySpec:
    """One array; ``options`` (for data keys) may change its codecs, chunks and shards."""
    dims, shape = layout_dims + reading_dims, event_shape + reading_shape
    reading_nbytes = _reading_nbytes(dtype, reading_shape)
    chunks = tuple(max(1, c) for c in event_chunks(event_shape, reading_nbytes) + reading_shape)
    codecs, shards = None, None
    if data_key is not None:
        where = f"{where}, data key {data_key!r}"
        options = options or ZarrOptions()
        chunks = resolve_chunks(options.chunks.get(data_key), dims, shape, chunks, where=where)
        chunk_nbytes = _reading_nbytes(dtype, chunks[len(event_shape) :]) * math.prod(
            chunks[: len(event_shape)]
        )
        shards = resolve_shards(
            options.shards.get(data_key), dims, shape, chunks, chunk_nbytes, len(reading_shape), where=where
        )
        default = IMAGE_DEFAULT if reading_nbytes >= FRAME_BYTES and dtype.kind in "biuf" else None
        codecs = resolve_codecs(options.codecs.get(data_key, default), dtype, where=where)
    return ArraySpec(
        name=name,
        role=role,
        dims=dims,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=_fill_value(dtype),
        attrs=attrs,
        reading_shape=reading_shape,
        data_key=data_key,
        codecs=codecs,
        shards=shards,
    )


def _provenance(layout_dims: tuple[str, ...], event_shape: tuple[int, ...], grid: bool) -> list[ArraySpec]:
    arrays = [
        _array(TIME, "time", layout_dims, event_shape, (), (), np.dtype("float64"),
               {"long_name": "event time", "units": "seconds since 1970-01-01",
                "calendar": "proleptic_gregorian"}),
        _array(SEQ_NUM, "seq_num", layout_dims, event_shape, (), (), np.dtype("int64"),
               {"long_name": "event sequence number (0: no event)"}),
    ]  # fmt: skip
    if grid:
        arrays.append(
            _array(WRITTEN, "written", layout_dims, event_shape, (), (), np.dtype("bool"),
                   {"long_name": "true where the grid point holds a complete event"})
        )  # fmt: skip
    return arrays


def stream_layout(
    start: Mapping[str, Any],
    descriptors: Sequence[Mapping[str, Any]],
    grid: Grid | None = None,
    *,
    layout_dims: tuple[str, ...] | None = None,
    event_shape: tuple[int, ...] | None = None,
    name: str | None = None,
    options: ZarrOptions | None = None,
) -> StreamLayout:
    """The layout of one stream from its start document and all its descriptors so far.

    ``grid`` places the stream on the scan's grid (pass ``grid_from_start(start)`` for the streams
    it names); without it the stream grows along ``time``. ``options`` are the user's codecs,
    chunks and shards per data key.
    """
    stream = name or str(descriptors[0].get("name", "primary"))
    uid = start.get("uid", "<no uid>")
    if grid is not None:
        layout_dims, event_shape = grid.dims, grid.shape
    elif layout_dims is None or event_shape is None:
        layout_dims, event_shape = (EVENT_DIM,), (0,)
    arrays: dict[str, ArraySpec] = {
        a.name: a for a in _provenance(layout_dims, event_shape, grid is not None)
    }
    if grid is not None:
        for axis in grid.axes:
            if axis.setpoints is None:
                continue
            attrs: dict[str, JSONValue] = {"long_name": f"{axis.dim} setpoint", "relative": axis.relative}
            if axis.units:
                attrs["units"] = axis.units
            arrays[axis.dim] = ArraySpec(
                name=axis.dim, role="setpoint", dims=(axis.dim,), shape=(len(axis.setpoints),),
                chunks=(len(axis.setpoints),), dtype=np.dtype("float64"), fill_value=float("nan"),
                attrs=attrs,
                values=np.asarray(axis.setpoints, dtype="float64"),
            )  # fmt: skip
    readbacks = {r for axis in grid.axes for r in axis.readbacks} if grid is not None else set()
    dim_sizes: dict[str, int] = dict(zip(layout_dims, event_shape, strict=True))
    keys: dict[str, str] = {}
    external: dict[str, str] = {}
    for descriptor in descriptors:
        object_keys = descriptor.get("object_keys") or {}
        # every field of a scanned motor (readback, setpoint) is a coordinate of the grid
        motor_fields = {
            f
            for obj, fields in object_keys.items()
            if obj in readbacks or readbacks & set(fields)
            for f in fields
        }
        for key, data_key in (descriptor.get("data_keys") or {}).items():
            if key in keys:
                _check_same(arrays[keys[key]], key, data_key, stream, uid)
                continue
            dtype = reading_dtype(key, data_key, stream)
            reading_shape = tuple(int(n) for n in data_key.get("shape") or ())
            if any(n < 0 for n in reading_shape):
                raise DocumentError(
                    f"data key {key!r} of stream {stream!r} in run {uid} has shape {list(reading_shape)}; "
                    "describe() must give the full shape of one reading"
                )
            reading_dims = _reading_dims(key, data_key, reading_shape, dim_sizes)
            # a dimension's name is its setpoint coordinate's, so a readback named alike moves aside
            array_name = _safe_name(f"{key}_readback" if key in layout_dims else key)
            while array_name in arrays:
                array_name += "_data"
            attrs = {"data_key": to_json({"name": key, **data_key})}
            if data_key.get("units"):
                attrs["units"] = to_json(data_key["units"])
            role: Role = "readback" if (key in readbacks or key in motor_fields) else "data"
            arrays[array_name] = _array(
                array_name, role, layout_dims, event_shape, reading_dims, reading_shape, dtype, attrs, key,
                options, f"run {uid}, stream {stream!r}",
            )  # fmt: skip
            keys[key] = array_name
            if data_key.get("external"):
                external[key] = str(data_key["external"])
    coordinates = " ".join(a.name for a in arrays.values() if a.role == "readback")
    if coordinates:
        arrays = {
            n: replace(a, attrs={**a.attrs, "coordinates": coordinates}) if a.role == "data" else a
            for n, a in arrays.items()
        }
    return StreamLayout(
        name=stream, grid=grid, arrays=arrays, keys=keys, descriptors=tuple(descriptors), external=external
    )


def _reading_dims(
    key: str, data_key: Mapping[str, Any], shape: tuple[int, ...], dim_sizes: dict[str, int]
) -> tuple[str, ...]:
    """Dimension names of one reading: ``dims`` from describe() when it fits, else ``<key>_dim_<i>``.

    A name another key already uses with another size becomes ``<key>_<name>``, so names never
    collide between keys of different sizes.
    """
    declared = data_key.get("dims")
    if isinstance(declared, list | tuple) and len(declared) == len(shape) and all(declared):
        dims = [str(d) for d in declared]
    else:
        dims = [f"{key}_dim_{i}" for i in range(len(shape))]
    for i, (dim, size) in enumerate(zip(dims, shape, strict=True)):
        name = _safe_name(dim)
        if dim_sizes.setdefault(name, size) != size:
            name = _safe_name(f"{key}_{dim}")
            while dim_sizes.setdefault(name, size) != size:
                name += "_"
        dims[i] = name
    return tuple(dims)


def _check_same(array: ArraySpec, key: str, data_key: Mapping[str, Any], stream: str, uid: Any) -> None:
    """A later descriptor may repeat a data key only with the same dtype and shape."""
    dtype = reading_dtype(key, data_key, stream)
    shape = tuple(int(n) for n in data_key.get("shape") or ())
    if dtype != array.dtype or shape != array.reading_shape:
        raise DocumentError(
            f"run {uid}, stream {stream!r}: a new descriptor declares data key {key!r} as {dtype} "
            f"{list(shape)}, but it was {array.dtype} {list(array.reading_shape)}; a key keeps its dtype "
            "and shape within a stream: read the changed device into a stream of another name"
        )


def overflow_layout(layout: StreamLayout) -> StreamLayout:
    """The 1-D layout of the events of a grid stream that do not fit its grid (or were superseded).

    Each array keeps its codecs; chunks are the defaults along ``time``, without shards.
    """
    arrays: dict[str, ArraySpec] = {}
    for spec in layout.arrays.values():
        if spec.role in {"setpoint", "written"}:
            continue
        reading_dims = spec.dims[spec.event_ndim :]
        overflow = _array(
            spec.name, spec.role, (EVENT_DIM,), (0,), reading_dims, spec.reading_shape, spec.dtype,
            spec.attrs,
        )  # fmt: skip
        arrays[spec.name] = replace(overflow, data_key=spec.data_key, codecs=spec.codecs)
    return StreamLayout(
        name=OVERFLOW_GROUP, grid=None, arrays=arrays, keys=dict(layout.keys), descriptors=layout.descriptors,
        external=dict(layout.external),
    )  # fmt: skip

"""One schema per stream, for every format: what each data key is, computed once.

A start document says whether a run is a grid; each descriptor says what its data keys are
(``dtype_numpy``, ``shape``, ``dims``, ``units``, ``external``). :func:`stream_schema` turns them
into a :class:`StreamSchema`: for each data key its numpy dtype, the shape and dimension names of
one reading, its role and units, and whether its events hold datum ids until filled. Every check
that a descriptor is consistent happens here, once. Each format maps the schema to its own
layout (Zarr arrays with chunks and codecs, Arrow columns); none reads a descriptor itself.

A data key keeps its shape within a stream; its dtype may only widen (:class:`Widening`): when a
later descriptor declares it wider, or when readings came that did not fit (the run sink says
which, as ``widenings``). A later descriptor that changes a key's shape, or turns a number into
text, is recorded in :attr:`StreamSchema.conflicts`: the key keeps its first declaration, and
readings that do not fit it are refused one by one, never the descriptor.

Dimension names follow one rule for every format: a reading's ``dims`` from ``describe()`` when
they fit its shape, else ``<key>_dim_<i>``; a name that another dimension of the stream (the
grid's, ``time``, or another key's) already has with another length becomes ``<key>_<name>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from .._documents import EventDescriptor
from .._encoding import JSONValue, to_json
from .._errors import DocumentError
from ._grid import Grid
from ._values import widened_dtype

__all__ = [
    "EVENT_DIM",
    "Role",
    "StreamSchema",
    "Variable",
    "Widening",
    "reading_dtype",
    "safe_name",
    "stream_schema",
]

EVENT_DIM = "time"
"""The dimension of a stream that is not on a grid: one entry per event, in arrival order."""

Role = Literal["reading", "readback"]
"""``readback``: a field of a scanned motor (a coordinate of the grid); ``reading``: the rest."""

_JSON_DTYPES = {"number": "float64", "integer": "int64", "boolean": "bool", "string": "str"}
_TEXT_NBYTES = 32
"""What a text reading is guessed to weigh, for buffer and batch bounds."""


@dataclass(frozen=True)
class Widening:
    """A data key stored wider than its descriptor declared it, and why."""

    declared: np.dtype[Any]
    dtype: np.dtype[Any]
    seq_num: int | None
    """The first event whose reading did not fit; ``None``: a later descriptor declared it wider."""

    def to_json(self) -> dict[str, JSONValue]:
        return {"declared": str(self.declared), "stored": str(self.dtype), "first_seq_num": self.seq_num}


@dataclass(frozen=True)
class Variable:
    """One data key of a stream: everything a format needs to store its readings."""

    key: str
    dtype: np.dtype[Any]
    """numpy dtype of the readings; text of any kind is ``np.dtype(str)``."""
    shape: tuple[int, ...]
    """The shape of one reading (``()`` for a scalar)."""
    dims: tuple[str, ...]
    """The dimension names of one reading."""
    role: Role
    units: str | None
    external: str | None
    """The ``external`` spec of a key whose events hold datum ids until filled, else ``None``."""
    description: dict[str, JSONValue] = field(compare=False, default_factory=dict)
    """The data key as its descriptor gives it, in strict JSON."""
    widening: Widening | None = None
    """Set when the key is stored wider than declared."""

    @property
    def is_text(self) -> bool:
        return self.dtype.kind in "SUO"

    @property
    def nbytes(self) -> int:
        """About how many bytes one reading takes."""
        itemsize = _TEXT_NBYTES if self.is_text else self.dtype.itemsize
        return max(1, itemsize * math.prod(self.shape))


@dataclass(frozen=True)
class StreamSchema:
    """The data keys of one stream, from its start document and all its descriptors so far."""

    run: str
    """The run's uid."""
    name: str
    grid: Grid | None
    """The scan's grid when this stream lies on it; ``None`` for streams that grow along ``time``."""
    variables: dict[str, Variable]
    """data key -> its variable, in the order the descriptors declare them"""
    descriptors: tuple[EventDescriptor, ...]
    external: dict[str, str] = field(default_factory=dict)
    """data key -> its ``external`` spec, for keys whose events hold datum ids until filled"""
    conflicts: dict[str, str] = field(default_factory=dict)
    """data key -> how a later descriptor redeclared it in a way that cannot be stored with it"""

    @property
    def event_dims(self) -> tuple[str, ...]:
        """The dimensions that index events: the grid's, or ``time``."""
        return self.grid.dims if self.grid is not None else (EVENT_DIM,)

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Their lengths; ``0`` for ``time``, which grows with every event."""
        return self.grid.shape if self.grid is not None else (0,)

    @property
    def where(self) -> str:
        """How messages name this stream."""
        return f"run {self.run}, stream {self.name!r}"


def safe_name(name: str) -> str:
    """A data key or dimension as a node or column name: no ``/``, not hidden, not special."""
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


def _reading_dims(
    key: str, data_key: Mapping[str, Any], shape: tuple[int, ...], dim_sizes: dict[str, int]
) -> tuple[str, ...]:
    """Dimension names of one reading, by the module's one rule; ``dim_sizes`` learns them."""
    declared = data_key.get("dims")
    if isinstance(declared, list | tuple) and len(declared) == len(shape) and all(declared):
        dims = [str(d) for d in declared]
    else:
        dims = [f"{key}_dim_{i}" for i in range(len(shape))]
    for i, (dim, size) in enumerate(zip(dims, shape, strict=True)):
        name = safe_name(dim)
        if dim_sizes.setdefault(name, size) != size:
            name = safe_name(f"{key}_{dim}")
            while dim_sizes.setdefault(name, size) != size:
                name += "_"
        dims[i] = name
    return tuple(dims)


def _motor_fields(descriptor: Mapping[str, Any], readbacks: set[str]) -> set[str]:
    """Every field of a scanned motor (its readback, its setpoint): each is a coordinate of the grid."""
    object_keys = descriptor.get("object_keys") or {}
    return {
        f
        for obj, fields in object_keys.items()
        if obj in readbacks or readbacks & set(fields)
        for f in fields
    }


def stream_schema(
    start: Mapping[str, Any],
    descriptors: Sequence[EventDescriptor],
    grid: Grid | None,
    widenings: Mapping[str, Widening] | None = None,
) -> StreamSchema:
    """The schema of one stream from its start document and all its descriptors so far (no I/O).

    ``grid`` places the stream on the scan's grid (``grid_from_start(start)``, for the streams
    it names); without it the stream grows along ``time``. ``widenings`` are the keys widened
    because their readings did not fit (see :func:`~bluesky_zarr.layout.check_readings`).

    Raises
    ------
    DocumentError
        A data key has a dtype that cannot be stored, or a shape with a negative length.
    """
    stream = str(descriptors[0].get("name", "primary"))
    uid = str(start.get("uid", "<no uid>"))
    event_dims, event_shape = (grid.dims, grid.shape) if grid is not None else ((EVENT_DIM,), (0,))
    readbacks = {r for axis in grid.axes for r in axis.readbacks} if grid is not None else set()
    dim_sizes: dict[str, int] = dict(zip(event_dims, event_shape, strict=True))
    variables: dict[str, Variable] = {}
    conflicts: dict[str, str] = {}
    for descriptor in descriptors:
        motor_fields = _motor_fields(descriptor, readbacks)
        data_keys: Mapping[str, Mapping[str, Any]] = descriptor.get("data_keys") or {}
        for key, data_key in data_keys.items():
            dtype = reading_dtype(key, data_key, stream)
            shape = tuple(int(n) for n in data_key.get("shape") or ())
            known = variables.get(key)
            if known is not None:
                if dtype == known.dtype and shape == known.shape:
                    continue
                wider = widened_dtype(known.dtype, np.zeros(0, dtype)) if shape == known.shape else None
                if wider is None:
                    conflicts[key] = (
                        f"descriptor {descriptor.get('uid')} declares data key {key!r} as {dtype} "
                        f"{list(shape)}, but it was {known.dtype} {list(known.shape)}"
                    )
                elif wider != known.dtype:
                    declared = known.widening.declared if known.widening else known.dtype
                    variables[key] = replace(known, dtype=wider, widening=Widening(declared, wider, None))
                continue
            if any(n < 0 for n in shape):
                raise DocumentError(
                    f"data key {key!r} of stream {stream!r} in run {uid} has shape {list(shape)}; "
                    "describe() must give the full shape of one reading"
                )
            units = data_key.get("units")
            external = data_key.get("external")
            variables[key] = Variable(
                key=key,
                dtype=dtype,
                shape=shape,
                dims=_reading_dims(key, data_key, shape, dim_sizes),
                role="readback" if (key in readbacks or key in motor_fields) else "reading",
                units=str(units) if units else None,
                external=str(external) if external else None,
                description={str(k): to_json(v) for k, v in data_key.items()},
            )
    for key, widening in (widenings or {}).items():
        known = variables.get(key)
        if known is not None and widening.dtype != known.dtype and np.can_cast(known.dtype, widening.dtype):
            variables[key] = replace(known, dtype=widening.dtype, widening=widening)
    external = {k: v.external for k, v in variables.items() if v.external is not None}
    return StreamSchema(
        run=uid,
        name=stream,
        grid=grid,
        variables=variables,
        descriptors=tuple(descriptors),
        external=external,
        conflicts=conflicts,
    )

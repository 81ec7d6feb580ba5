"""From documents to what is stored: pure functions, no I/O.

- :mod:`._grid`: the grid a start document declares (dims, setpoints, snaking), and where the
  first events place a relative one.
- :mod:`._schema`: one :class:`StreamSchema` per stream, for every format (dtypes, shapes,
  dimension names, roles, units, external keys, and the consistency checks).
- :mod:`._chunking`: chunk and shard shapes (defaults, requests, :func:`propose_chunks`).
- :mod:`._values`: readings against their declared dtype and shape: kept, widened, or refused.
- :mod:`._arrays`: a stream's arrays by name, role and attributes, for the formats that store
  named N-D arrays (Zarr, HDF5).

Each format maps a schema onto its own layout (``sinks.zarr``, ``sinks.tables``).
"""

from ._arrays import (
    OVERFLOW,
    RESERVED,
    SEQ_NUM,
    TIME,
    WRITTEN,
    ArrayRole,
    StreamArray,
    default_chunks,
    fill_value,
    offset_name,
    reading_nbytes,
    stream_arrays,
)
from ._chunking import (
    FRAME_BYTES,
    TARGET_CHUNK_BYTES,
    TARGET_SHARD_BYTES,
    ChunkProposal,
    ChunkRequest,
    ShardRequest,
    check_request,
    event_chunks,
    propose_chunks,
    resolve_chunks,
    resolve_shards,
)
from ._grid import Grid, GridAxis, anchor_grid, grid_from_start
from ._schema import (
    EVENT_DIM,
    Role,
    StreamSchema,
    Variable,
    Widening,
    reading_dtype,
    safe_name,
    stream_reading_shape,
    stream_schema,
)
from ._values import ReadingsCheck, check_readings, lossless_cast, readings_array, widened_dtype

__all__ = [
    "EVENT_DIM",
    "FRAME_BYTES",
    "OVERFLOW",
    "RESERVED",
    "SEQ_NUM",
    "TARGET_CHUNK_BYTES",
    "TARGET_SHARD_BYTES",
    "TIME",
    "WRITTEN",
    "ArrayRole",
    "ChunkProposal",
    "ChunkRequest",
    "Grid",
    "GridAxis",
    "ReadingsCheck",
    "Role",
    "ShardRequest",
    "StreamArray",
    "StreamSchema",
    "Variable",
    "Widening",
    "anchor_grid",
    "check_readings",
    "check_request",
    "default_chunks",
    "event_chunks",
    "fill_value",
    "grid_from_start",
    "lossless_cast",
    "offset_name",
    "propose_chunks",
    "reading_dtype",
    "reading_nbytes",
    "readings_array",
    "resolve_chunks",
    "resolve_shards",
    "safe_name",
    "stream_arrays",
    "stream_reading_shape",
    "stream_schema",
    "widened_dtype",
]

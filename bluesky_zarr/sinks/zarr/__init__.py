"""The Zarr v3 format: a schema mapped onto arrays, chunks assembled and encoded, shards streamed.

- :mod:`._layout` (pure): a stream schema as the arrays of its group.
- :mod:`._metadata`: the ``zarr.json`` of arrays, groups and the consolidated root.
- :mod:`._array_writer`, :mod:`._shards`: chunks assembled in memory, written whole or into shards.
- :mod:`._stream`, :mod:`._run`: a stream group, and the run sink; :mod:`._format`: :class:`Zarr`.
"""

from ._format import Zarr
from ._layout import ArraySpec, StreamLayout, overflow_layout, zarr_layout
from ._options import ZarrOptions
from ._run import ZarrRun

__all__ = ["ArraySpec", "StreamLayout", "Zarr", "ZarrOptions", "ZarrRun", "overflow_layout", "zarr_layout"]

"""What a user asks of the Zarr format per data key: codecs, chunks and shards."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..._errors import ConfigurationError
from ...codecs import check_codecs
from ...layout import ChunkRequest, ShardRequest, check_request

__all__ = ["ZarrOptions"]

_IRREGULAR = (
    "not every reader of Zarr stores reads one yet: tensorstore and zarr-python before 3.2 (the "
    "newest for Python 3.11) refuse it, zarr-python 3.2 and later read it only after "
    "zarr.config.set({'array.rectilinear_chunks': True}), and one such array makes the whole run "
    "unreadable to them. For fine chunks in a region of interest, give small regular chunks inside "
    "shards, e.g. chunks={'camera_image': {'y': 64, 'x': 64}}, shards={'camera_image': 'auto'}: a "
    "reader decodes only the chunks it asks for, and the files stay few. See "
    "docs/how-to/choose-chunks-and-shards.md, 'Irregular chunk grids'"
)
"""Why the Zarr format refuses a list of sizes along a dimension (the rectilinear chunk grid)."""


@dataclass(frozen=True)
class ZarrOptions:
    """What a user asked for, per data key: codecs, chunks and shards.

    The forms are checked here, when a writer is made; sizes are checked against each array when
    its stream starts, before anything of it is written.
    """

    codecs: Mapping[str, Any] = field(default_factory=dict)
    chunks: Mapping[str, ChunkRequest] = field(default_factory=dict)
    shards: Mapping[str, ShardRequest] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for what, value in (("codecs", self.codecs), ("chunks", self.chunks), ("shards", self.shards)):
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ConfigurationError(
                    f"{what} must be a mapping from data key to its setting, e.g. "
                    f"{{'camera_image': ...}}, not {value!r}"
                )
        for key, choice in self.codecs.items():  # the form of each choice; its fit to the dtype comes later
            check_codecs(choice, np.dtype("<u2"), where=f"codecs of data key {key!r}")
        for what, requests in (("chunks", self.chunks), ("shards", self.shards)):
            for key, request in requests.items():
                if not (what == "shards" and request == "auto"):
                    check_request(request, what, f"data key {key!r}", irregular=_IRREGULAR)

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
                    check_request(request, what, f"data key {key!r}")

"""Codecs of a user's own, written as zarr-python's docs say (async ``_encode_single``/``_decode_single``
only), for the tests of codecs the writer runs through zarr-python's codec objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from zarr.abc.codec import ArrayArrayCodec, BytesBytesCodec
from zarr.registry import register_codec

ROW_DELTA = "tests.row_delta"
XOR = "tests.xor"


@dataclass(frozen=True)
class RowDelta(ArrayArrayCodec):
    """Each pixel minus its left neighbour (integers wrap); decoding sums them back."""

    is_fixed_size = True

    @classmethod
    def from_dict(cls, data: Any) -> RowDelta:
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {"name": ROW_DELTA, "configuration": {}}

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: Any) -> int:
        return input_byte_length

    async def _encode_single(self, chunk_array: Any, chunk_spec: Any) -> Any:
        values = chunk_array.as_numpy_array()
        delta = values.copy()
        delta[..., 1:] = np.diff(values, axis=-1)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(delta)

    async def _decode_single(self, chunk_array: Any, chunk_spec: Any) -> Any:
        delta = chunk_array.as_numpy_array()
        return chunk_spec.prototype.nd_buffer.from_numpy_array(np.cumsum(delta, axis=-1, dtype=delta.dtype))


@dataclass(frozen=True)
class Xor(BytesBytesCodec):
    """Every byte XORed with ``key``: a bytes->bytes codec that changes every byte."""

    key: int = 0x5A
    is_fixed_size = True

    @classmethod
    def from_dict(cls, data: Any) -> Xor:
        return cls(**data.get("configuration", {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": XOR, "configuration": {"key": self.key}}

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: Any) -> int:
        return input_byte_length

    async def _encode_single(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
        return chunk_spec.prototype.buffer.from_bytes((chunk_bytes.as_numpy_array() ^ self.key).tobytes())

    async def _decode_single(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
        return chunk_spec.prototype.buffer.from_bytes((chunk_bytes.as_numpy_array() ^ self.key).tobytes())


def register() -> None:
    register_codec(ROW_DELTA, RowDelta)
    register_codec(XOR, Xor)

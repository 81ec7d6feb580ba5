"""The prediction codec: each pixel stored as its difference from a prediction of rows stored before it.

A camera frame's counts (or its Anscombe codes) are a smooth scene plus noise. A compressor sees
the scene as well as the noise, and pays for both: on the compression benchmark's frames the
Anscombe codes take 6.3 bits per pixel where the noise alone needs 3.05. This codec removes the
scene: it stores each value minus a prediction made from values the decoder already has, so what
is left is mostly noise, small numbers around 0 that a compressor's entropy stage packs closely.

The prediction, over the last two axes of a chunk (rows and columns; earlier axes are frames
handled side by side, a 1-D chunk is one row):

- every fourth row (a *base row*) is predicted from the base row four rows above: the mean of the
  five values around the same column (the first row from its left neighbour);
- then rows ``2, 6, 10, ...`` from the base rows two above and two below, the mean of ten values;
- then the odd rows from the rows just above and below, the mean of ten values.

Averaging many neighbours keeps their noise out of the prediction (ten values add a tenth of the
noise's variance), and each prediction needs only rows decoded before it, so decoding is a few
whole-array steps plus one step per base row. The difference is taken modulo the value width and
zigzag-mapped (``0, -1, 1, -2, ... -> 0, 1, 2, 3, ...``), so nothing overflows and the codec is
lossless for every input. Signed inputs are moved to offset binary first, so that -1 and 0 are
neighbours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Self

import numpy as np

from .._zarr_adapter import native_dtype, register_codec_class, spec_with_dtype
from ._errors import CodecError
from ._numpy_filter import NumpyFilter

if TYPE_CHECKING:
    from .._zarr_adapter import ArraySpec

__all__ = ["PREDICTION_NAME", "PredictionCodec"]

PREDICTION_NAME: Final = "bluesky_zarr.prediction"
"""The codec's name in ``zarr.json`` and in zarr-python's codec registry."""

_INPUTS: Final = ("uint8", "uint16", "uint32", "int8", "int16", "int32")
_STRIDE: Final = 4
"""Rows between base rows: two levels of rows are predicted from rows above and below."""
_TAPS: Final = 5
"""Values averaged in each neighbouring row, centred on the column."""


def _row_sums(rows: np.ndarray, wide: type[np.signedinteger[Any]]) -> np.ndarray:
    """The sum of the ``_TAPS`` values around each column of ``rows`` (edges repeated), as ``wide``."""
    half = _TAPS // 2
    width = rows.shape[-1]
    padded = np.empty((*rows.shape[:-1], width + 2 * half), dtype=wide)
    padded[..., half : half + width] = rows
    padded[..., :half] = padded[..., half : half + 1]
    padded[..., half + width :] = padded[..., half + width - 1 : half + width]
    total = padded[..., :width].copy()
    for offset in range(1, _TAPS):
        total += padded[..., offset : offset + width]
    return total


def _interpolated(known: np.ndarray, count: int) -> np.ndarray:
    """Predictions for ``count`` rows that lie halfway between rows already known: the mean of the
    ``_TAPS`` values around the column in the known rows above and below (the row above, twice, at
    the bottom edge). ``known`` holds :func:`_row_sums` of the known rows, in order."""
    total = known[..., :count, :].copy()
    below = known[..., 1 : count + 1, :]
    total[..., : below.shape[-2], :] += below
    total[..., below.shape[-2] :, :] += known[..., below.shape[-2] : count, :]
    total += _TAPS
    total //= 2 * _TAPS
    return total


class PredictionCodec(NumpyFilter):
    """A lossless Zarr v3 array->array codec storing each value as its difference from a prediction.

    Made for camera frames and the codes of :class:`~bluesky_zarr.codecs.AnscombeCodec`: it takes
    the smooth scene out of a frame so that a compressor after it sees mostly noise. Values come
    back exactly. Registered with zarr-python as ``"bluesky_zarr.prediction"`` (also through the
    ``zarr.codecs`` entry point); use it after the Anscombe codec, or alone on counts, followed by
    a compressor with an entropy stage, such as blosc zstd at level 1 with byte shuffle. It has no
    configuration.

    Notes
    -----
    Integer inputs of 8, 16 or 32 bits, signed or not; the stored values are unsigned of the same
    width. The prediction runs over the last two axes of each chunk, so chunk a frame whole, or in
    tiles of many rows.
    """

    is_fixed_size = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The codec described by its ``zarr.json`` entry."""
        if data.get("name") != PREDICTION_NAME:
            raise CodecError(f"prediction codec: expected name {PREDICTION_NAME!r}, got {data.get('name')!r}")
        if data.get("configuration"):
            raise CodecError(
                f"prediction codec: it takes no configuration, not {data['configuration']!r}; write "
                f"{{'name': {PREDICTION_NAME!r}}}"
            )
        return cls()

    def to_dict(self) -> dict[str, Any]:
        """The codec's ``zarr.json`` entry."""
        return {"name": PREDICTION_NAME}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PredictionCodec)

    def __hash__(self) -> int:
        return hash(PREDICTION_NAME)

    def __repr__(self) -> str:
        return "PredictionCodec()"

    def validate(self, *, dtype: Any, **_: Any) -> None:
        """Raise :class:`CodecError` unless the codec can encode ``dtype``."""
        self._check(dtype.to_native_dtype() if hasattr(dtype, "to_native_dtype") else np.dtype(dtype))

    def resolve_metadata(self, chunk_spec: ArraySpec) -> ArraySpec:
        """The chunk spec after encoding: unsigned values of the same width; fill value 0."""
        return spec_with_dtype(chunk_spec, self._check(native_dtype(chunk_spec)), 0)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        """The same size: one stored value per value."""
        return input_byte_length

    # --- numpy ----------------------------------------------------------------------------------

    def encode_array(self, chunk: np.ndarray) -> np.ndarray:
        """The stored values of ``chunk`` (unsigned, same width and shape)."""
        chunk = np.asarray(chunk)
        stored = self._check(chunk.dtype)
        if chunk.size == 0:
            return np.empty(chunk.shape, dtype=stored)
        values, shape, wide = self._working(chunk)
        sums = _row_sums(values, wide)
        predicted = np.empty(values.shape, dtype=wide)
        base = predicted[..., ::_STRIDE, :]
        base[..., 1:, :] = sums[..., : (base.shape[-2] - 1) * _STRIDE : _STRIDE, :]
        base[..., 1:, :] += _TAPS // 2
        base[..., 1:, :] //= _TAPS
        base[..., 0, 0] = 0
        base[..., 0, 1:] = values[..., 0, :-1]
        step = _STRIDE // 2
        while step >= 1:
            rows = predicted[..., step :: 2 * step, :]
            rows[...] = _interpolated(sums[..., :: 2 * step, :], rows.shape[-2])
            step //= 2
        residual = (values - predicted.astype(stored)).view(f"i{stored.itemsize}")  # modulo the width
        zigzag: np.ndarray = (residual << 1) ^ (residual >> (8 * stored.itemsize - 1))
        return zigzag.view(stored).reshape(shape)

    def decode_array(self, chunk: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        """The values, of ``dtype``, that ``chunk`` stores (a fresh array)."""
        dtype = np.dtype(dtype)
        stored = self._check(dtype)
        codes = np.asarray(chunk)
        if codes.dtype.itemsize != stored.itemsize or codes.dtype.kind not in "ui":
            raise CodecError(
                f"prediction codec: a chunk of {codes.dtype} cannot hold values of {dtype}: the array's "
                "zarr.json does not match its chunks"
            )
        if codes.size == 0:
            return np.empty(codes.shape, dtype=dtype.newbyteorder("="))
        zigzag, shape, wide = self._working(codes.view(stored) if codes.dtype != stored else codes)
        residual = (zigzag >> 1) ^ -(zigzag & 1)  # unsigned: the difference modulo the width
        values = np.empty_like(residual)
        base = values[..., ::_STRIDE, :]
        np.cumsum(residual[..., 0, :], axis=-1, dtype=stored, out=base[..., 0, :])
        for index in range(1, base.shape[-2]):  # each base row from the one above: one step per row
            above = _row_sums(base[..., index - 1, :], wide)
            above += _TAPS // 2
            above //= _TAPS
            np.add(residual[..., index * _STRIDE, :], above.astype(stored), out=base[..., index, :])
        step = _STRIDE // 2
        while step >= 1:
            rows = values[..., step :: 2 * step, :]
            known = _row_sums(values[..., :: 2 * step, :], wide)
            prediction = _interpolated(known, rows.shape[-2]).astype(stored)
            np.add(residual[..., step :: 2 * step, :], prediction, out=rows)
            step //= 2
        return self._restore(values, dtype).reshape(shape)

    # --- the working form: unsigned offset-binary values, (..., rows, columns) ---------------

    @staticmethod
    def _check(dtype: np.dtype[Any]) -> np.dtype[Any]:
        if dtype.name not in _INPUTS:
            raise CodecError(
                f"prediction codec: predicts integer values ({', '.join(_INPUTS)}), not {dtype}; "
                "use a lossless preset such as 'blosc-zstd' for this array"
            )
        return np.dtype(f"u{dtype.itemsize}")

    @staticmethod
    def _working(chunk: np.ndarray) -> tuple[np.ndarray, tuple[int, ...], type[np.signedinteger[Any]]]:
        """The chunk as unsigned offset-binary values, (..., rows, columns); its shape; the signed
        type wide enough for sums of neighbours."""
        shape = chunk.shape
        if not chunk.dtype.isnative:
            chunk = chunk.astype(chunk.dtype.newbyteorder("="))
        stored = np.dtype(f"u{chunk.dtype.itemsize}")
        grid = chunk.reshape((1, -1) if chunk.ndim < 2 else shape)
        if chunk.dtype.kind == "i":  # offset binary: -1 and 0 are neighbours, as they are as counts
            values = grid.view(stored) ^ stored.type(1 << (8 * stored.itemsize - 1))
        else:
            values = grid.astype(stored, copy=False)
        return values, shape, np.int64 if stored.itemsize > 2 else np.int32

    @staticmethod
    def _restore(values: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        if dtype.kind == "i":
            values ^= values.dtype.type(1 << (8 * dtype.itemsize - 1))
        return values.view(dtype.newbyteorder("="))


register_codec_class(PREDICTION_NAME, PredictionCodec)

"""The Anscombe codec: camera counts quantized in steps of their own shot noise.

A pixel that counts ``x`` ADU holds ``u = (x - zero_level) / conversion_gain`` photons, whose shot
noise is ``sqrt(u)`` photons. The variance-stabilizing transform

    f(u) = sign(u) * 2 * (sqrt(|u| + 3/8) - sqrt(3/8))

makes that noise about 1 everywhere (``f'(u) = 1 / sigma(u)`` with ``sigma(u) = sqrt(|u| + 3/8)``),
so rounding ``f(u) / beta`` to an integer code loses at most ``beta / 2`` noise standard deviations
at every signal level, and the codes need far fewer bits than the counts. ``f`` is odd and its
slope is continuous at 0: counts below the zero level (read noise, a drifting offset) get codes of
their own, with the same bound, instead of wrapping or clipping. See
``docs/explanations/anscombe-codec.md`` for the derivation of the bound and measured figures.

Codes are ``k = floor(f(u(x)) / beta + 1/2) - k_min``, where ``k_min`` is the code of the smallest
value of the input dtype, so codes start at 0. Decoding maps code ``k`` to the count at the centre
of its cell, ``rint(zero_level + conversion_gain * f^-1(beta * (k + k_min)))``, moved to the nearest
count that has code ``k`` (so decoded frames encode to the same codes again) and clipped to the input
dtype. The dtype's maximum (a saturated pixel) has a code of its own, one above the others, and
comes back exactly, so saturation masks still work on decoded frames. Both directions are lookup
tables: the forward one indexed by count (every value of a uint8/uint16/int8/int16 input), the
inverse one indexed by code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, Self

import numpy as np

from .._zarr_adapter import native_dtype, register_codec_class, spec_with_dtype
from ._errors import CodecError
from ._numpy_filter import NumpyFilter

if TYPE_CHECKING:
    from .._zarr_adapter import ArraySpec

__all__ = ["CODEC_NAME", "AnscombeCodec", "AnscombeParameters", "estimate_anscombe_parameters"]

CODEC_NAME: Final = "bluesky_zarr.anscombe"
"""The codec's name in ``zarr.json`` and in zarr-python's codec registry."""

_INPUTS: Final = ("uint8", "uint16", "int8", "int16")
_ENCODED: Final = ("uint8", "uint16")
_S0: Final = math.sqrt(3 / 8)


def stabilize(photons: np.ndarray) -> np.ndarray:
    """``f(u)``: photons to stabilized units (noise standard deviation about 1); odd, C1 at 0."""
    magnitude = 2.0 * (np.sqrt(np.abs(photons) + 3 / 8) - _S0)
    return np.asarray(np.copysign(magnitude, photons))


def unstabilize(stabilized: np.ndarray) -> np.ndarray:
    """``f^-1``: stabilized units back to photons."""
    root = np.abs(stabilized) / 2.0 + _S0
    return np.asarray(np.copysign(root * root - 3 / 8, stabilized))


@dataclass(frozen=True)
class _Tables:
    forward: np.ndarray
    """Code of every input value, indexed by the value's unsigned bit pattern."""
    inverse: np.ndarray
    """Decoded count of every code, of the input dtype."""
    codes: int


def _codes(values: np.ndarray, zero_level: float, gain: float, beta: float) -> np.ndarray:
    return np.floor(stabilize((values - zero_level) / gain) / beta + 0.5)


@lru_cache(maxsize=64)
def _tables(zero_level: float, gain: float, beta: float, input_dtype: str, encoded_dtype: str) -> _Tables:
    dtype = np.dtype(input_dtype)
    info = np.iinfo(dtype)
    unsigned = np.dtype(f"u{dtype.itemsize}")
    values = np.arange(2 ** (8 * dtype.itemsize), dtype=unsigned).view(dtype).astype(np.float64)
    raw = _codes(values, zero_level, gain, beta)
    lowest = float(_codes(np.array([info.min], dtype=np.float64), zero_level, gain, beta)[0])
    codes = raw - lowest
    ordinary = int(_codes(np.array([info.max], dtype=np.float64), zero_level, gain, beta)[0] - lowest) + 1
    codes[values == info.max] = ordinary  # saturation: a code of its own, decoded exactly
    all_codes = np.arange(ordinary + 1, dtype=np.float64)
    centres = np.rint(zero_level + gain * unstabilize(beta * (all_codes + lowest)))
    # the count nearest the centre among those with this code, so that decoded counts encode to the
    # same code again (re-encoding is lossless); a code no count has keeps its centre
    order = np.argsort(values, kind="stable")
    by_value, code_by_value = values[order], codes[order]
    first = np.searchsorted(code_by_value, all_codes, side="left")
    last = np.searchsorted(code_by_value, all_codes, side="right") - 1
    used = first <= last
    nearest = np.clip(centres[used], by_value[first[used]], by_value[last[used]])
    centres[used] = nearest
    inverse = np.clip(centres, info.min, info.max).astype(dtype)
    forward = codes.astype(encoded_dtype)
    count = ordinary + 1
    for table in (forward, inverse):
        table.flags.writeable = False
    return _Tables(forward=forward, inverse=inverse, codes=count)


def _code_count(zero_level: float, gain: float, beta: float, input_dtype: np.dtype[Any]) -> int:
    info = np.iinfo(input_dtype)
    ends = _codes(np.array([info.min, info.max], dtype=np.float64), zero_level, gain, beta)
    return int(ends[1] - ends[0]) + 2  # the ordinary codes, and one for saturation


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise CodecError(f"Anscombe codec: {name} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise CodecError(f"Anscombe codec: {name} must be a positive finite number, not {value!r}")
    return number


@dataclass(frozen=True)
class AnscombeCodec(NumpyFilter):
    """A Zarr v3 array->array codec storing camera counts as codes in steps of their shot noise.

    Lossy, with a bound: every count comes back within ``beta / 2`` shot-noise standard deviations
    (plus rounding to whole counts) at its own signal level, over the whole range of the input
    dtype, below the zero level and at saturation included. Registered with zarr-python as
    ``"bluesky_zarr.anscombe"``; use it as ``zarr.create_array(..., filters=[AnscombeCodec(...)])``
    or in :func:`~bluesky_zarr.codecs.resolve_codecs` lists, followed by a lossless compressor.

    Parameters
    ----------
    zero_level
        The count at which the signal is zero photons (ADU): the camera's offset, less
        ``read_noise**2 / conversion_gain`` when read noise matters (what
        :func:`estimate_anscombe_parameters` measures).
    conversion_gain
        Counts per detected photon (photoelectron), ADU/e-: a count of ``x`` holds
        ``(x - zero_level) / conversion_gain`` photons. Cameras often quote the inverse (e-/ADU).
    beta
        The quantization step in units of the shot-noise standard deviation; the largest error is
        about ``beta / 2`` of it. 0.5 loses little (the added error is ``beta / sqrt(12)`` = 14 %
        of the noise in quadrature, 1 % more noise).
    encoded_dtype
        ``"uint8"`` or ``"uint16"``, the stored code type. By default the smallest that holds every
        code of the input dtype's full range; a given one that cannot is a :class:`CodecError`.

    Notes
    -----
    Input arrays must be of an integer dtype of at most 16 bits (uint8, uint16, int8, int16).
    """

    zero_level: float
    conversion_gain: float
    beta: float
    encoded_dtype: str | None
    is_fixed_size = True

    def __init__(
        self,
        *,
        zero_level: float = 0.0,
        conversion_gain: float = 1.0,
        beta: float = 0.5,
        encoded_dtype: str | np.dtype[Any] | None = None,
    ) -> None:
        if isinstance(zero_level, bool) or not isinstance(zero_level, int | float | np.integer | np.floating):
            raise CodecError(f"Anscombe codec: zero_level must be a number, not {zero_level!r}")
        if not math.isfinite(float(zero_level)):
            raise CodecError(f"Anscombe codec: zero_level must be finite, not {zero_level!r}")
        encoded = None
        if encoded_dtype is not None:
            try:
                encoded = np.dtype(encoded_dtype).name
            except TypeError as error:
                raise CodecError(
                    f"Anscombe codec: encoded_dtype {encoded_dtype!r} is not a data type"
                ) from error
            if encoded not in _ENCODED:
                raise CodecError(
                    f"Anscombe codec: encoded_dtype must be 'uint8' or 'uint16' (or None to choose), "
                    f"not {encoded_dtype!r}"
                )
        object.__setattr__(self, "zero_level", float(zero_level))
        object.__setattr__(self, "conversion_gain", _positive("conversion_gain", conversion_gain))
        object.__setattr__(self, "beta", _positive("beta", beta))
        object.__setattr__(self, "encoded_dtype", encoded)

    # --- zarr-python's codec interface ----------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The codec described by its ``zarr.json`` entry."""
        if data.get("name") != CODEC_NAME:
            raise CodecError(f"Anscombe codec: expected name {CODEC_NAME!r}, got {data.get('name')!r}")
        configuration = dict(data.get("configuration") or {})
        unknown = set(configuration) - {"zero_level", "conversion_gain", "beta", "encoded_dtype"}
        if unknown:
            raise CodecError(
                f"Anscombe codec: unknown configuration {sorted(unknown)}; it takes zero_level, "
                "conversion_gain, beta and encoded_dtype"
            )
        return cls(**configuration)

    def to_dict(self) -> dict[str, Any]:
        """The codec's ``zarr.json`` entry."""
        configuration: dict[str, Any] = {
            "zero_level": self.zero_level,
            "conversion_gain": self.conversion_gain,
            "beta": self.beta,
        }
        if self.encoded_dtype is not None:
            configuration["encoded_dtype"] = self.encoded_dtype
        return {"name": CODEC_NAME, "configuration": configuration}

    def evolve_from_array_spec(self, array_spec: ArraySpec) -> Self:
        """The codec with ``encoded_dtype`` chosen for the array's dtype when it was not given."""
        if self.encoded_dtype is not None:
            return self
        return replace(self, encoded_dtype=self.encoded_dtype_for(native_dtype(array_spec)))

    def validate(self, *, dtype: Any, **_: Any) -> None:
        """Raise :class:`CodecError` unless the codec can encode every value of ``dtype``."""
        native = dtype.to_native_dtype() if hasattr(dtype, "to_native_dtype") else np.dtype(dtype)
        self._check(native)

    def resolve_metadata(self, chunk_spec: ArraySpec) -> ArraySpec:
        """The chunk spec after encoding: the code dtype, and the fill value's code."""
        native = native_dtype(chunk_spec)
        encoded = self._check(native)
        fill = np.asarray(chunk_spec.fill_value, dtype=native).reshape(1)
        code = self.encode_array(fill)[0]
        return spec_with_dtype(chunk_spec, np.dtype(encoded), code)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        """The size of a chunk's codes in bytes."""
        native = native_dtype(chunk_spec)
        return input_byte_length // native.itemsize * np.dtype(self._check(native)).itemsize

    # --- numpy ----------------------------------------------------------------------------------

    def code_count(self, dtype: np.dtype[Any] | str) -> int:
        """How many codes the full range of ``dtype`` needs."""
        native = self._input(np.dtype(dtype))
        return _code_count(self.zero_level, self.conversion_gain, self.beta, native)

    def encoded_dtype_for(self, dtype: np.dtype[Any] | str) -> str:
        """The code dtype for inputs of ``dtype``: the given one, or the smallest that fits."""
        return self._check(np.dtype(dtype))

    def encode_array(self, chunk: np.ndarray) -> np.ndarray:
        """The codes of ``chunk`` (counts of an integer dtype of at most 16 bits), same shape."""
        chunk = np.asarray(chunk)
        if not chunk.dtype.isnative:
            chunk = chunk.astype(chunk.dtype.newbyteorder("="))
        tables = self._tables(chunk.dtype)
        unsigned = chunk.view(f"u{chunk.dtype.itemsize}") if chunk.dtype.kind == "i" else chunk
        return np.take(tables.forward, unsigned)  # twice as fast as tables.forward[unsigned]

    def decode_array(self, chunk: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        """The counts, of ``dtype``, that ``chunk``'s codes stand for (a fresh array)."""
        tables = self._tables(np.dtype(dtype))
        codes = np.asarray(chunk)
        if codes.size and int(codes.max()) >= tables.codes:
            raise CodecError(
                f"Anscombe codec: a chunk holds code {int(codes.max())} but {dtype} input has only "
                f"{tables.codes} codes with these parameters: the chunk is corrupt or the array's "
                "zarr.json does not match its chunks"
            )
        return np.take(tables.inverse, codes)

    def _input(self, dtype: np.dtype[Any]) -> np.dtype[Any]:
        if dtype.name not in _INPUTS:
            raise CodecError(
                f"Anscombe codec: encodes integer camera counts ({', '.join(_INPUTS)}), not {dtype}; "
                "use a lossless preset such as 'blosc-zstd' for this array"
            )
        return dtype.newbyteorder("=")

    def _check(self, dtype: np.dtype[Any]) -> str:
        native = self._input(dtype)
        count = _code_count(self.zero_level, self.conversion_gain, self.beta, native)
        if self.encoded_dtype is None:
            if count > 2**16:
                raise CodecError(
                    f"Anscombe codec: {native} input needs {count} codes with beta={self.beta}, more "
                    "than uint16 holds; use a larger beta"
                )
            return "uint8" if count <= 2**8 else "uint16"
        if count > np.iinfo(self.encoded_dtype).max + 1:
            raise CodecError(
                f"Anscombe codec: the full range of {native} needs {count} codes with zero_level="
                f"{self.zero_level}, conversion_gain={self.conversion_gain}, beta={self.beta}, more "
                f"than encoded_dtype {self.encoded_dtype!r} holds ({np.iinfo(self.encoded_dtype).max + 1}); "
                "use encoded_dtype='uint16', leave it out to choose, or use a larger beta"
            )
        return self.encoded_dtype

    def _tables(self, dtype: np.dtype[Any]) -> _Tables:
        # per instance, by dtype: a dict look-up per chunk instead of checking the parameters again
        cache: dict[np.dtype[Any], _Tables] = self.__dict__.setdefault("_cache", {})
        tables = cache.get(dtype)
        if tables is None:
            encoded = self._check(dtype)
            name = dtype.newbyteorder("=").name
            tables = cache[dtype] = _tables(self.zero_level, self.conversion_gain, self.beta, name, encoded)
        return tables


register_codec_class(CODEC_NAME, AnscombeCodec)


# --- parameters from photon transfer ------------------------------------------------------------------


@dataclass(frozen=True)
class AnscombeParameters:
    """What the Anscombe codec needs to know about a camera, from :func:`estimate_anscombe_parameters`.

    Attributes
    ----------
    zero_level
        The count where the fitted variance reaches zero (ADU): the offset less
        ``read_noise**2 / conversion_gain``.
    conversion_gain
        Counts per photon (ADU/e-), the slope of variance against mean.
    """

    zero_level: float
    conversion_gain: float

    def codec(self, beta: float = 0.5, encoded_dtype: str | None = None) -> AnscombeCodec:
        """An :class:`AnscombeCodec` with these parameters."""
        return AnscombeCodec(
            zero_level=self.zero_level,
            conversion_gain=self.conversion_gain,
            beta=beta,
            encoded_dtype=encoded_dtype,
        )


_BINS: Final = 64


def _binned(
    means: np.ndarray, variances: np.ndarray, weights: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels sorted by mean into bins of equal count: each bin's mean, variance and weight."""
    order = np.argsort(means, kind="stable")
    groups = np.array_split(order, min(_BINS, max(1, means.size // 50)))
    centre = np.array([means[g].mean() for g in groups])
    variance = np.array([variances[g].mean() for g in groups])
    # the variance of a bin's mean variance: var^2 * 2 / (degrees of freedom of the bin)
    weight = np.array([len(g) * weights for g in groups]) / np.maximum(variance, 1e-12) ** 2
    return centre, variance, weight


def _robust_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """Weighted least squares, refitted without points beyond 4 robust standard deviations:
    slope, intercept and the slope's standard error."""
    keep = np.ones(x.size, dtype=bool)
    for _ in range(5):
        slope, intercept = np.polyfit(x[keep], y[keep], 1, w=np.sqrt(w[keep]))
        scaled = (y - (slope * x + intercept)) * np.sqrt(w)
        spread = 1.4826 * np.median(np.abs(scaled[keep] - np.median(scaled[keep])))
        new = np.abs(scaled) <= 4 * max(spread, 1e-12)
        if new.sum() < 5 or np.array_equal(new, keep):
            break
        keep = new
    (slope, intercept), covariance = np.polyfit(x[keep], y[keep], 1, w=np.sqrt(w[keep]), cov=True)
    return float(slope), float(intercept), float(np.sqrt(covariance[0, 0]))


def estimate_anscombe_parameters(frames: np.ndarray) -> AnscombeParameters:
    """Conversion gain and zero level from frames of a camera, by photon transfer.

    Shot noise makes a pixel's variance grow with its mean: ``var = g * (mean - zero_level)``,
    with ``g`` the conversion gain in counts per photon. Pixels are sorted by mean into bins, each
    bin's mean variance is taken, and a line is fitted to variance against mean, dropping outlying
    bins (hot pixels, saturation). The scene must hold a range of brightness, dark to bright.

    Parameters
    ----------
    frames
        Either a stack ``(n, y, x)`` of ``n >= 2`` frames of a static scene (each pixel's variance
        over the frames: the most accurate), or a single frame ``(y, x)``, whose noise is taken from
        second differences of neighbouring pixels along ``x`` (a smooth scene is needed; edges
        are outliers the fit tolerates). Saturated pixels (at the dtype's maximum) are left out.

    Returns
    -------
    AnscombeParameters

    Raises
    ------
    CodecError
        Too few pixels, or a scene with no range of brightness to fit a line to.
    """
    data = np.asarray(frames)
    if data.ndim not in (2, 3) or data.dtype.kind not in "uif":
        raise CodecError(
            f"estimate_anscombe_parameters: frames must be one frame (y, x) or a stack (n, y, x) of "
            f"numbers, not an array of shape {data.shape} and dtype {data.dtype}"
        )
    # pixels at either end of an integer dtype were clipped, their variance is not the camera's
    saturated = np.iinfo(data.dtype).max if data.dtype.kind in "ui" else np.inf
    lowest = np.iinfo(data.dtype).min if data.dtype.kind in "ui" else -np.inf
    if data.ndim == 3 and data.shape[0] >= 2:
        stack = data.astype(np.float64)
        valid = ((data < saturated) & (data > lowest)).all(axis=0).ravel()
        means = stack.mean(axis=0).ravel()[valid]
        variances = stack.var(axis=0, ddof=1).ravel()[valid]
        freedom = (data.shape[0] - 1) / 2
    else:
        frame = (data[0] if data.ndim == 3 else data).astype(np.float64)
        if frame.shape[-1] < 3:
            raise CodecError("estimate_anscombe_parameters: a single frame needs at least 3 columns")
        second = frame[:, :-2] - 2 * frame[:, 1:-1] + frame[:, 2:]
        local = (frame[:, :-2] + frame[:, 1:-1] + frame[:, 2:]) / 3
        inside = (frame < saturated) & (frame > lowest)
        valid = (inside[:, :-2] & inside[:, 1:-1] & inside[:, 2:]).ravel()
        means, variances = local.ravel()[valid], (second.ravel()[valid] ** 2) / 6  # var(a - 2b + c) = 6 var
        freedom = 0.5 / 3  # overlapping triples: about a third as many independent samples
    if means.size < 500:
        raise CodecError(
            f"estimate_anscombe_parameters: {means.size} usable pixels are too few; give at least a "
            "few thousand unsaturated pixels (for a stack, two or more frames of a static scene)"
        )
    centre, variance, weight = _binned(means, variances, freedom)
    span = centre[-1] - centre[0]
    if span <= 0 or span < 4 * np.sqrt(max(float(np.median(variance)), 1e-12)):
        raise CodecError(
            "estimate_anscombe_parameters: the scene has no range of brightness to fit variance "
            "against mean; image something with dark and bright regions, or several exposures"
        )
    slope, intercept, error = _robust_line(centre, variance, weight)
    if not slope > 5 * error:
        raise CodecError(
            f"estimate_anscombe_parameters: variance does not grow with the mean (slope {slope:.3g} +- "
            f"{error:.2g}); "
            "the frames do not look like a shot-noise-limited camera of a static scene"
        )
    return AnscombeParameters(zero_level=-intercept / slope, conversion_gain=slope)

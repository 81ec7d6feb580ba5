"""Codecs for the arrays the writers make: presets by short name, full Zarr v3 codec lists, the
Anscombe codec for photon-counting cameras and the prediction codec that takes a frame's scene
out before compression; bit rounding of floats (numcodecs' ``bitround``) and any other codec
registered with zarr-python may be listed too.

:func:`resolve_codecs` turns a user's choice into a :class:`CodecChain` (the ``zarr.json`` codec
list and a fast synchronous chunk encoder). :class:`AnscombeCodec` is a Zarr v3 array->array codec
registered with zarr-python under the name ``bluesky_zarr.anscombe`` (also through the
``zarr.codecs`` entry point, so stock readers decode it without importing this package first);
:class:`PredictionCodec` is registered the same way as ``bluesky_zarr.prediction``.
:class:`AnscombeNumcodec` is the Anscombe codec as a numcodecs filter for Zarr v2 arrays, registered
with numcodecs as ``bluesky_zarr.anscombe`` (and through the ``numcodecs.codecs`` entry point).
"""

from __future__ import annotations

from ._anscombe import AnscombeCodec, AnscombeParameters, estimate_anscombe_parameters
from ._chains import CodecChain, check_codecs, resolve_codecs
from ._errors import CodecError
from ._numcodecs import AnscombeNumcodec
from ._parsing import FILTER_PRESETS, IMAGE_DEFAULT, PRESETS, SMALL_DEFAULT
from ._prediction import PredictionCodec
from ._steps import BITROUND, SyncArrayCodec

__all__ = [
    "BITROUND",
    "FILTER_PRESETS",
    "IMAGE_DEFAULT",
    "PRESETS",
    "SMALL_DEFAULT",
    "AnscombeCodec",
    "AnscombeNumcodec",
    "AnscombeParameters",
    "CodecChain",
    "CodecError",
    "PredictionCodec",
    "SyncArrayCodec",
    "check_codecs",
    "estimate_anscombe_parameters",
    "resolve_codecs",
]

"""Photon-transfer estimates of the Anscombe parameters from simulated cameras of known gain."""

from __future__ import annotations

import numpy as np
import pytest

from bluesky_zarr.codecs import AnscombeCodec, AnscombeParameters, CodecError, estimate_anscombe_parameters
from bluesky_zarr.devices._sim_physics import CameraModel


def scene(shape: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Mean photons per pixel: a dark background, a bright spot and a brighter band."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    spot = 400 * np.exp(-((x - shape[1] / 2) ** 2 + (y - shape[0] / 2) ** 2) / (2 * (shape[1] / 6) ** 2))
    return 3 + spot + 150 * (x > 0.8 * shape[1])


def camera(gain: float, offset: float, read_noise: float, frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean = scene()
    counts = (
        offset
        + gain * rng.poisson(mean, (frames, *mean.shape))
        + rng.normal(0, read_noise, (frames, *mean.shape))
    )
    return np.clip(np.rint(counts), 0, 65535).astype("<u2")


@pytest.mark.parametrize(
    ("gain", "offset", "read_noise"), [(1.0, 100, 0.0), (2.5, 100, 2.0), (0.5, 1000, 1.2), (8.0, 50, 5.0)]
)
def test_a_stack_recovers_gain_and_zero_level(gain: float, offset: float, read_noise: float) -> None:
    estimate = estimate_anscombe_parameters(camera(gain, offset, read_noise, frames=16))
    assert estimate.conversion_gain == pytest.approx(gain, rel=0.03)
    # the level where variance reaches zero: read noise (and rounding to counts) moves it down
    variance_free = offset - (read_noise**2 + 1 / 12) / gain
    assert estimate.zero_level == pytest.approx(variance_free, abs=max(1.0, 0.5 * gain))


@pytest.mark.parametrize(
    ("gain", "offset", "read_noise"), [(1.0, 100, 0.0), (2.5, 100, 2.0), (0.5, 1000, 1.2)]
)
def test_a_single_frame_gives_a_rougher_estimate(gain: float, offset: float, read_noise: float) -> None:
    estimate = estimate_anscombe_parameters(camera(gain, offset, read_noise, frames=1)[0])
    assert estimate.conversion_gain == pytest.approx(gain, rel=0.10)
    assert estimate.zero_level == pytest.approx(offset, abs=max(3.0, 2 * gain))


def test_the_projects_simulated_camera() -> None:
    model = CameraModel(gain=0.5, zero_level=100.0, read_noise=1.2)
    rng = np.random.default_rng(3)
    frames = np.stack([model.expose(rng, 4 * scene(), 0.01, np.dtype("<u2")) for _ in range(10)])
    estimate = estimate_anscombe_parameters(frames)
    assert estimate.conversion_gain == pytest.approx(model.gain, rel=0.03)
    assert estimate.zero_level == pytest.approx(model.zero_level - model.read_noise**2 / model.gain, abs=1.5)


def test_saturated_pixels_are_left_out() -> None:
    frames = camera(2.5, 100, 1.0, frames=8)
    frames[:, :40, :40] = 65535  # a saturated corner, with no variance at all
    assert estimate_anscombe_parameters(frames).conversion_gain == pytest.approx(2.5, rel=0.03)


def test_the_estimate_makes_a_codec() -> None:
    parameters = AnscombeParameters(zero_level=98.5, conversion_gain=2.5)
    codec = parameters.codec(beta=0.3)
    assert codec == AnscombeCodec(zero_level=98.5, conversion_gain=2.5, beta=0.3)
    assert parameters.codec().beta == 0.5


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((4, 4, 4, 4), dtype="u2"), "one frame .* or a stack"),
        (np.full((3, 10, 10), 5, dtype="u2"), "too few"),
        (np.full((2, 200, 200), 100, dtype="u2"), "no range of brightness"),
        (np.zeros((100, 2), dtype="u2") + 7, "at least 3 columns"),
    ],
)
def test_what_cannot_be_estimated_is_a_clear_error(frames: np.ndarray, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        estimate_anscombe_parameters(frames)


def test_a_scene_without_shot_noise_is_refused() -> None:
    rng = np.random.default_rng(0)
    ramp = np.linspace(100, 1000, 200 * 200).reshape(200, 200)
    frames = np.rint(ramp + rng.normal(0, 3, (4, 200, 200))).astype("<u2")  # constant noise, no shot noise
    with pytest.raises(CodecError, match="does not grow with the mean"):
        estimate_anscombe_parameters(frames)

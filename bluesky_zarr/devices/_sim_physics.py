"""The physics behind the simulated devices: pure functions and frozen parameter sets, no I/O.

The simulated devices (``Sim*``) and the caproto IOCs share this module, so a scan through
Channel Access sees the same sample as a scan with the in-process devices. The model is
explained in ``docs/explanations/simulated-physics.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CameraModel",
    "SimOptics",
    "SimSample",
    "expected_photoelectrons",
    "laser_output_power",
    "linear_move_duration",
    "photon_energy",
    "trapezoid_move_duration",
    "trapezoid_position",
]

PLANCK = 6.62607015e-34  # J s
LIGHT_SPEED = 299_792_458.0  # m / s

#: Ti:sapphire tuning range (nm) of a Mai Tai-like laser.
TI_SAPPHIRE_RANGE_NM = (690.0, 1040.0)


def photon_energy(wavelength_nm: float) -> float:
    """Energy of one photon, in joules, at ``wavelength_nm``."""
    return PLANCK * LIGHT_SPEED / (wavelength_nm * 1e-9)


def laser_output_power(
    wavelength_nm: float, *, peak_power_mw: float = 2500.0, peak_nm: float = 800.0, width_nm: float = 150.0
) -> float:
    """Output power (mW) of a Ti:sapphire laser tuned to ``wavelength_nm``.

    The gain curve of Ti:sapphire peaks near 800 nm; a Gaussian of 150 nm width gives the
    familiar shape: about 60 % of the peak at 690 nm and a few percent at 1040 nm.
    """
    return float(peak_power_mw * math.exp(-(((wavelength_nm - peak_nm) / width_nm) ** 2)))


def linear_move_duration(distance: float, rate: float) -> float:
    """Time (s) to cover ``distance`` at a constant ``rate`` (a laser tuning at nm/s)."""
    return abs(distance) / rate


def trapezoid_move_duration(distance: float, velocity: float, acceleration: float) -> float:
    """Time (s) a stage needs for ``distance`` with a trapezoidal (or triangular) velocity profile."""
    d = abs(distance)
    if d == 0:
        return 0.0
    ramp_distance = velocity**2 / acceleration
    if d <= ramp_distance:  # never reaches full speed: triangle
        return 2.0 * math.sqrt(d / acceleration)
    return d / velocity + velocity / acceleration


def trapezoid_position(t: float, start: float, end: float, velocity: float, acceleration: float) -> float:
    """Position at time ``t`` (s) after the start of a trapezoidal move from ``start`` to ``end``."""
    total = trapezoid_move_duration(end - start, velocity, acceleration)
    if t >= total:
        return end
    if t <= 0:
        return start
    d = abs(end - start)
    sign = 1.0 if end >= start else -1.0
    v_peak = min(velocity, math.sqrt(d * acceleration))
    t_ramp = v_peak / acceleration
    if t < t_ramp:
        s = 0.5 * acceleration * t**2
    elif t < total - t_ramp:
        s = 0.5 * acceleration * t_ramp**2 + v_peak * (t - t_ramp)
    else:
        s = d - 0.5 * acceleration * (total - t) ** 2
    return start + sign * s


@dataclass(frozen=True)
class SimSample:
    """A sample with a resonance whose wavelength changes along the stage axis.

    The sample is a graded film: at stage position ``p`` (mm) and at a point ``x_mm`` across the
    field of view, its response peaks at ``center_nm + dispersion_nm_per_mm * (p + x_mm)``. The
    response (the fraction of the incident photons that reach the camera) is
    ``background + contrast * exp(-(lambda - peak)**2 / (2 * linewidth_nm**2))``.

    Parameters
    ----------
    center_nm, dispersion_nm_per_mm, linewidth_nm, contrast, background
        The resonance; see above.
    field_of_view_mm
        Width of the field of view along ``x``.
    """

    center_nm: float = 800.0
    dispersion_nm_per_mm: float = 10.0
    linewidth_nm: float = 15.0
    contrast: float = 0.8
    background: float = 0.2
    field_of_view_mm: float = 1.0

    @classmethod
    def dark(cls) -> SimSample:
        """A black sample: no light reaches the camera, only dark current and read noise."""
        return cls(contrast=0.0, background=0.0)

    @classmethod
    def uniform(cls, response: float = 1.0) -> SimSample:
        """A flat, wavelength-independent sample (a flat field), for photon-transfer measurements."""
        return cls(contrast=0.0, background=response)

    def response(
        self, wavelength_nm: float, position_mm: float, x_mm: np.ndarray | float = 0.0
    ) -> np.ndarray:
        """Fraction of the incident photons the sample sends to the camera."""
        peak = self.center_nm + self.dispersion_nm_per_mm * (position_mm + np.asarray(x_mm))
        line = np.exp(-((wavelength_nm - peak) ** 2) / (2.0 * self.linewidth_nm**2))
        return self.background + self.contrast * line


@dataclass(frozen=True)
class SimOptics:
    """The light path from the laser to the camera.

    Parameters
    ----------
    transmission
        Fraction of the laser's output power that reaches the sample (the power meter sits there).
    collection_per_pixel
        Fraction of the photons reaching the sample that land on the pixel at the beam centre
        (for a fully responsive sample); it folds in the objective, the filters and the camera's
        quantum efficiency.
    beam_sigma
        Gaussian width of the beam on the camera, as a fraction of the frame width. ``inf``
        illuminates the frame evenly (a flat field).
    """

    transmission: float = 1e-3
    collection_per_pixel: float = 1e-10
    beam_sigma: float = 0.25

    @classmethod
    def flat(cls, collection_per_pixel: float = 1e-10) -> SimOptics:
        """Even illumination over the whole frame."""
        return cls(collection_per_pixel=collection_per_pixel, beam_sigma=math.inf)


def expected_photoelectrons(
    shape: tuple[int, int],
    *,
    wavelength_nm: float,
    position_mm: float,
    power_at_sample_mw: float,
    exposure_s: float,
    sample: SimSample,
    optics: SimOptics,
) -> np.ndarray:
    """Mean number of photoelectrons per pixel in one exposure (before shot noise), shape ``shape``."""
    ny, nx = shape
    y = (np.arange(ny) - (ny - 1) / 2.0) / max(nx, 1)
    x = (np.arange(nx) - (nx - 1) / 2.0) / max(nx, 1)
    if math.isinf(optics.beam_sigma):
        profile = np.ones(shape)
    else:
        r2 = y[:, None] ** 2 + x[None, :] ** 2
        profile = np.exp(-r2 / (2.0 * optics.beam_sigma**2))
    response = sample.response(wavelength_nm, position_mm, x[None, :] * sample.field_of_view_mm)
    photons_per_s = max(power_at_sample_mw, 0.0) * 1e-3 / photon_energy(wavelength_nm)
    return photons_per_s * optics.collection_per_pixel * exposure_s * profile * response  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CameraModel:
    """How a scientific CMOS camera turns photoelectrons into counts.

    ``counts = zero_level + gain * Poisson(signal + dark_current * exposure) + Normal(0, read_noise)``,
    rounded and clipped to ``[0, 2**bit_depth - 1]``.

    Parameters
    ----------
    gain
        Conversion gain, counts per photoelectron.
    zero_level
        Dark offset added to every pixel, in counts.
    read_noise
        RMS read noise, in counts.
    bit_depth
        Bits of the digitiser; pixels saturate at ``2**bit_depth - 1``.
    dark_current
        Thermal electrons per pixel per second.
    """

    gain: float = 0.5
    zero_level: float = 100.0
    read_noise: float = 1.2
    bit_depth: int = 16
    dark_current: float = 0.5

    @property
    def saturation(self) -> int:
        """The highest count a pixel can hold."""
        return 2**self.bit_depth - 1  # type: ignore[no-any-return]

    def expose(
        self, rng: np.random.Generator, photoelectrons: np.ndarray, exposure_s: float, dtype: np.dtype
    ) -> np.ndarray:
        """One frame of counts, of ``dtype``, from mean ``photoelectrons`` per pixel."""
        mean = np.asarray(photoelectrons, dtype=float) + self.dark_current * exposure_s
        electrons = rng.poisson(mean)
        counts = self.zero_level + self.gain * electrons + rng.normal(0.0, self.read_noise, mean.shape)
        limit = min(self.saturation, np.iinfo(dtype).max)
        return np.clip(np.rint(counts), 0, limit).astype(dtype)

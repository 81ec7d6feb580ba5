"""The scientific camera (16-bit, like a Prime BSI): frames inline in events, software trigger."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Kind, Signal
from ophyd.status import DeviceStatus

from ._errors import DeviceFaultError, InvalidSettingError
from ._laser import TunableLaser
from ._signals import DescribedSignal, non_negative, positive
from ._sim_physics import CameraModel, SimOptics, SimSample, expected_photoelectrons
from ._stage import LinearStage

__all__ = ["ALLOWED_DTYPES", "Camera", "SimCamera"]

#: Pixel types a camera can deliver.
ALLOWED_DTYPES = ("uint8", "uint16", "uint32")

MAX_EXPOSURE_S = 3600.0


def _exposure(value: Any) -> str | None:
    problem = positive(value)
    if problem is None and value > MAX_EXPOSURE_S:
        return f"must be at most {MAX_EXPOSURE_S} s"
    return problem


def _bit_depth(value: Any) -> str | None:
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and 1 <= value <= 32:
        return None
    return "must be a whole number of bits from 1 to 32"


def check_dtype(dtype: Any, device: str) -> np.dtype:
    """The numpy dtype for ``dtype``, or :class:`InvalidSettingError` if a camera cannot deliver it."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in ALLOWED_DTYPES:
        raise InvalidSettingError(
            f"{device}: dtype {dtype!r} is not supported; use one of {', '.join(ALLOWED_DTYPES)}."
        )
    return resolved  # type: ignore[no-any-return]


class ImageSignal(DescribedSignal):
    """The frame: describes itself with the camera's current shape and ``dtype_numpy``, dims (y, x)."""

    def describe(self) -> dict[str, dict[str, Any]]:
        desc = super().describe()
        camera = self.parent
        key = desc[self.name]
        key.update(
            dtype="array",
            dtype_numpy=camera.dtype.str,
            shape=list(camera.frame_shape),
            dims=["y", "x"],
            units="counts",
        )
        return desc


class Camera(Device):
    """A camera with a software trigger: ``trigger()`` returns a status done after the exposure.

    Components (the same in :class:`SimCamera` and :class:`~bluesky_zarr.devices.EpicsCamera`):

    ``image``
        The frame, ``dtype`` pixels of ``frame_shape``, dims ``("y", "x")``; data key ``<name>_image``.
    ``mean`` (hinted, counts)
        Mean of the frame, a scalar for live plots.
    ``exposure_time`` (s), ``gain`` (counts per photoelectron), ``zero_level`` (counts),
    ``read_noise`` (counts RMS), ``bit_depth``
        Configuration. An invalid exposure or gain raises
        :class:`~bluesky_zarr.devices.InvalidSettingError` (a ``ValueError``).
    """

    image = Cpt(ImageSignal, value=np.zeros((0, 0), dtype=np.uint16), kind=Kind.normal)
    mean = Cpt(DescribedSignal, value=0.0, units="counts", dtype_numpy="<f8", kind=Kind.hinted)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)`` of a frame in pixels."""
        raise NotImplementedError

    @property
    def dtype(self) -> np.dtype:
        """Pixel type of a frame."""
        raise NotImplementedError

    def _publish(self, frame: np.ndarray) -> None:
        self.image.put(frame)
        self.mean.put(float(frame.mean()))

    def baseline_signals(self) -> list[Signal]:
        """The signals a scan records in its ``baseline`` stream (the camera settings)."""
        return [getattr(self, attr) for attr in self.configuration_attrs]


class SimCamera(Camera):
    """A simulated camera imaging :class:`SimSample` lit by a laser, at a stage position.

    Counts follow :class:`CameraModel`: Poisson photon and dark noise, conversion gain, zero level,
    Gaussian read noise, saturation at ``2**bit_depth - 1``. Frames are reproducible from ``seed``.

    Parameters
    ----------
    name
        Device name; data keys are ``<name>_image``, ``<name>_mean``.
    laser, stage
        Where the light and the sample position come from. Without a laser the camera sees dark
        frames; without a stage the sample sits at position 0.
    sample, optics
        The sample and the light path (see :mod:`bluesky_zarr.devices`'s physics explanation).
    shape
        ``(height, width)`` of a frame.
    dtype
        ``"uint16"`` (default), ``"uint8"`` or ``"uint32"``.
    exposure_time, gain, zero_level, read_noise, bit_depth, dark_current
        Sensor settings; ``bit_depth`` defaults to the bits of ``dtype``.
    seed
        Seed of the noise generator.
    fail_after
        Simulate a fault: triggers after this many frames fail with
        :class:`~bluesky_zarr.devices.DeviceFaultError`.
    """

    exposure_time = Cpt(
        DescribedSignal, value=0.01, units="s", dtype_numpy="<f8", validator=_exposure, kind=Kind.config
    )
    gain = Cpt(
        DescribedSignal, value=0.5, units="ADU/e-", dtype_numpy="<f8", validator=positive, kind=Kind.config
    )
    zero_level = Cpt(
        DescribedSignal,
        value=100.0,
        units="counts",
        dtype_numpy="<f8",
        validator=non_negative,
        kind=Kind.config,
    )
    read_noise = Cpt(
        DescribedSignal,
        value=1.2,
        units="counts",
        dtype_numpy="<f8",
        validator=non_negative,
        kind=Kind.config,
    )
    bit_depth = Cpt(
        DescribedSignal, value=16, units="bit", dtype_numpy="<i8", validator=_bit_depth, kind=Kind.config
    )
    dark_current = Cpt(
        DescribedSignal, value=0.5, units="e-/s", dtype_numpy="<f8", validator=non_negative, kind=Kind.config
    )

    def __init__(
        self,
        name: str = "camera",
        *,
        laser: TunableLaser | None = None,
        stage: LinearStage | None = None,
        sample: SimSample | None = None,
        optics: SimOptics | None = None,
        shape: tuple[int, int] = (256, 256),
        dtype: str = "uint16",
        exposure_time: float = 0.01,
        gain: float = 0.5,
        zero_level: float = 100.0,
        read_noise: float = 1.2,
        bit_depth: int | None = None,
        dark_current: float = 0.5,
        seed: int | None = 0,
        fail_after: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self._dtype = check_dtype(dtype, name)
        if len(shape) != 2 or any(not isinstance(n, int | np.integer) or n < 1 for n in shape):
            raise InvalidSettingError(
                f"{name}: shape {shape!r} must be two positive whole numbers (height, width)."
            )
        self._shape = (int(shape[0]), int(shape[1]))
        bits = self._dtype.itemsize * 8 if bit_depth is None else bit_depth
        if not isinstance(bits, int) or bits > self._dtype.itemsize * 8:
            raise InvalidSettingError(
                f"{name}: bit_depth {bit_depth!r} does not fit dtype {self._dtype.name}; "
                f"use at most {self._dtype.itemsize * 8} bits or a wider dtype."
            )
        self.exposure_time.put(exposure_time)
        self.gain.put(gain)
        self.zero_level.put(zero_level)
        self.read_noise.put(read_noise)
        self.bit_depth.put(bits)
        self.dark_current.put(dark_current)
        self.image.put(np.zeros(self._shape, dtype=self._dtype))
        self.laser = laser
        self.sample_stage = stage
        self.sample = SimSample() if sample is None else sample
        self.optics = SimOptics() if optics is None else optics
        self.fail_after = fail_after
        self.frames_taken = 0
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    def model(self) -> CameraModel:
        """The sensor model with the current settings."""
        return CameraModel(
            gain=float(self.gain.get()),
            zero_level=float(self.zero_level.get()),
            read_noise=float(self.read_noise.get()),
            bit_depth=int(self.bit_depth.get()),
            dark_current=float(self.dark_current.get()),
        )

    def expected_photoelectrons(self) -> np.ndarray:
        """Mean photoelectrons per pixel for an exposure now (no noise)."""
        exposure = float(self.exposure_time.get())
        if self.laser is None:
            return np.zeros(self._shape)
        wavelength = float(self.laser.wavelength.get())
        power = float(self.laser.power.get()) * float(self.laser.shutter.get())
        position = 0.0 if self.sample_stage is None else self.sample_stage.position
        return expected_photoelectrons(
            self._shape,
            wavelength_nm=wavelength,
            position_mm=position,
            power_at_sample_mw=power * self.optics.transmission,
            exposure_s=exposure,
            sample=self.sample,
            optics=self.optics,
        )

    def trigger(self) -> DeviceStatus:
        """Expose once; the status completes after ``exposure_time`` with the frame in ``image``."""
        status = DeviceStatus(self)
        exposure = float(self.exposure_time.get())
        with self._lock:
            if self.fail_after is not None and self.frames_taken >= self.fail_after:
                status.set_exception(
                    DeviceFaultError(f"{self.name}: simulated camera fault after {self.frames_taken} frames.")
                )
                return status
            self.frames_taken += 1
            frame = self.model().expose(self._rng, self.expected_photoelectrons(), exposure, self._dtype)

        def finish() -> None:
            self._publish(frame)
            status.set_finished()

        timer = threading.Timer(exposure, finish)
        timer.daemon = True
        timer.start()
        return status

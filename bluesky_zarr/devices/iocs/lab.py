"""A caproto IOC that simulates the whole setup: laser, stage, camera and power meter.

Run it on loopback only (see :func:`bluesky_zarr.devices.iocs.loopback_environment`)::

    python -m bluesky_zarr.devices.iocs.lab --prefix BZSIM: --list-pvs

PVs (with the default prefix ``BZSIM:``): ``BZSIM:laser:Wavelength`` (setpoint, put completes when
tuned and settled), ``BZSIM:laser:Wavelength_RBV``, ``BZSIM:stage:Position``/``Position_RBV``,
``BZSIM:cam:Acquire`` (put 1; completes after the exposure with the frame in ``ArrayData``),
``BZSIM:pm:Acquire``/``Power_RBV``, and the settings of each (``--list-pvs`` prints them all).
The physics is :mod:`bluesky_zarr.devices._sim_physics`, the same as the simulated devices'.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from caproto import ChannelType
from caproto.server import PVGroup, SubGroup, pvproperty, run, template_arg_parser

from .._camera import check_dtype
from .._sim_physics import (
    TI_SAPPHIRE_RANGE_NM,
    CameraModel,
    SimOptics,
    SimSample,
    expected_photoelectrons,
    laser_output_power,
    linear_move_duration,
    trapezoid_move_duration,
    trapezoid_position,
)

__all__ = ["main", "make_lab_ioc"]


async def _run_motion(
    group: Any,
    target: float,
    duration: float,
    profile: Callable[[float], float],
    write: Callable[[float], Any],
    settle_time: float,
) -> None:
    group.stop_requested = False
    t0 = time.monotonic()
    step = min(0.02, max(duration / 20.0, 0.001))
    while (elapsed := time.monotonic() - t0) < duration:
        await asyncio.sleep(step)
        if group.stop_requested:
            raise RuntimeError(f"move to {target} stopped")
        await write(profile(elapsed))
    await write(target)
    if settle_time > 0:
        await asyncio.sleep(settle_time)


class LaserGroup(PVGroup):
    """Ti:sapphire laser: tuning takes ``|delta| / TuningRate`` seconds, then ``SettleTime``."""

    wavelength = pvproperty(name="Wavelength_RBV", value=800.0, read_only=True, units="nm", precision=3)
    setpoint = pvproperty(
        name="Wavelength",
        value=800.0,
        units="nm",
        precision=3,
        lower_ctrl_limit=TI_SAPPHIRE_RANGE_NM[0],
        upper_ctrl_limit=TI_SAPPHIRE_RANGE_NM[1],
    )
    low_limit = pvproperty(name="LowLimit_RBV", value=TI_SAPPHIRE_RANGE_NM[0], read_only=True, units="nm")
    high_limit = pvproperty(name="HighLimit_RBV", value=TI_SAPPHIRE_RANGE_NM[1], read_only=True, units="nm")
    tuning_rate = pvproperty(name="TuningRate", value=500.0, units="nm/s")
    settle_time = pvproperty(name="SettleTime", value=0.0, units="s")
    shutter = pvproperty(name="Shutter", value=1)
    power = pvproperty(
        name="Power_RBV", value=laser_output_power(800.0), read_only=True, units="mW", precision=3
    )
    stop = pvproperty(name="Stop", value=0)

    stop_requested = False

    async def _write_wavelength(self, value: float) -> None:
        await self.wavelength.write(value)
        await self.power.write(laser_output_power(value))

    @setpoint.putter  # type: ignore[no-redef]
    async def setpoint(self, instance: Any, value: float) -> float:
        low, high = self.low_limit.value, self.high_limit.value
        if not low <= value <= high:
            raise ValueError(f"{instance.pvname}: {value} nm is outside [{low}, {high}] nm")
        start = float(self.wavelength.value)
        duration = linear_move_duration(value - start, float(self.tuning_rate.value))

        def profile(t: float) -> float:
            return start + (value - start) * min(t / duration, 1.0) if duration else value

        await _run_motion(
            self, value, duration, profile, self._write_wavelength, float(self.settle_time.value)
        )
        return value

    @stop.putter  # type: ignore[no-redef]
    async def stop(self, instance: Any, value: int) -> int:
        self.stop_requested = True
        return 0


class StageGroup(PVGroup):
    """Linear stage with a trapezoidal velocity profile."""

    position = pvproperty(name="Position_RBV", value=0.0, read_only=True, units="mm", precision=4)
    setpoint = pvproperty(
        name="Position", value=0.0, units="mm", precision=4, lower_ctrl_limit=-25.0, upper_ctrl_limit=25.0
    )
    low_limit = pvproperty(name="LowLimit_RBV", value=-25.0, read_only=True, units="mm")
    high_limit = pvproperty(name="HighLimit_RBV", value=25.0, read_only=True, units="mm")
    velocity = pvproperty(name="Velocity", value=10.0, units="mm/s")
    acceleration = pvproperty(name="Acceleration", value=100.0, units="mm/s^2")
    settle_time = pvproperty(name="SettleTime", value=0.0, units="s")
    stop = pvproperty(name="Stop", value=0)

    stop_requested = False

    @setpoint.putter  # type: ignore[no-redef]
    async def setpoint(self, instance: Any, value: float) -> float:
        low, high = self.low_limit.value, self.high_limit.value
        if not low <= value <= high:
            raise ValueError(f"{instance.pvname}: {value} mm is outside [{low}, {high}] mm")
        start = float(self.position.value)
        v, a = float(self.velocity.value), float(self.acceleration.value)
        duration = trapezoid_move_duration(value - start, v, a)
        await _run_motion(
            self,
            value,
            duration,
            lambda t: trapezoid_position(t, start, value, v, a),
            self.position.write,
            float(self.settle_time.value),
        )
        return value

    @stop.putter  # type: ignore[no-redef]
    async def stop(self, instance: Any, value: int) -> int:
        self.stop_requested = True
        return 0


class PowerMeterGroup(PVGroup):
    """Power meter at the sample: put 1 to ``Acquire``; ``Power_RBV`` then holds the reading."""

    power = pvproperty(name="Power_RBV", value=0.0, read_only=True, units="mW", precision=6)
    wavelength = pvproperty(name="Wavelength_RBV", value=800.0, read_only=True, units="nm")
    averaging_time = pvproperty(name="AveragingTime", value=0.0, units="s")
    acquire = pvproperty(name="Acquire", value=0)

    rng = np.random.default_rng(1)

    @acquire.putter  # type: ignore[no-redef]
    async def acquire(self, instance: Any, value: int) -> int:
        laser = self.parent.laser
        true_power = float(laser.power.value) * float(laser.shutter.value) * SimOptics.transmission
        noise = self.rng.normal(0.0, 1.0, 2)
        await asyncio.sleep(float(self.averaging_time.value))
        await self.wavelength.write(float(laser.wavelength.value))
        await self.power.write(true_power * (1.0 + 0.005 * noise[0]) + 1e-4 * noise[1])
        return 0


def make_lab_ioc(
    prefix: str,
    *,
    shape: tuple[int, int] = (256, 256),
    dtype: str = "uint16",
    seed: int = 0,
    tuning_rate: float = 500.0,
    velocity: float = 10.0,
    acceleration: float = 100.0,
    exposure_time: float = 0.01,
    **kwargs: Any,
) -> PVGroup:
    """Build the IOC (a caproto ``PVGroup``) for frames of ``shape`` and ``dtype``.

    Parameters
    ----------
    prefix
        PV prefix, e.g. ``"BZSIM:"``.
    shape, dtype
        Camera frames (the array PV holds ``height * width`` 32-bit integers).
    seed
        Seed of the camera noise.
    tuning_rate, velocity, acceleration, exposure_time
        Starting values of those settings.
    """
    pixel_type = check_dtype(dtype, f"{prefix}cam")
    height, width = int(shape[0]), int(shape[1])
    n_pixels = height * width
    bits = min(pixel_type.itemsize * 8, 31)

    class CameraGroup(PVGroup):
        """Camera: put 1 to ``Acquire``; it completes after ``AcquireTime``, the frame in ``ArrayData``."""

        array_data = pvproperty(
            name="ArrayData",
            value=[0] * n_pixels,
            dtype=ChannelType.LONG,
            max_length=n_pixels,
            read_only=True,
        )
        size_x = pvproperty(name="SizeX_RBV", value=width, read_only=True)
        size_y = pvproperty(name="SizeY_RBV", value=height, read_only=True)
        data_type = pvproperty(
            name="DataType_RBV", value=pixel_type.name, dtype=ChannelType.STRING, read_only=True
        )
        acquire_time = pvproperty(name="AcquireTime", value=exposure_time, units="s")
        gain = pvproperty(name="Gain", value=0.5, units="ADU/e-")
        zero_level = pvproperty(name="ZeroLevel", value=100.0, units="counts")
        read_noise = pvproperty(name="ReadNoise", value=1.2, units="counts")
        bit_depth = pvproperty(name="BitDepth", value=bits, units="bit")
        dark_current = pvproperty(name="DarkCurrent", value=0.5, units="e-/s")
        acquire = pvproperty(name="Acquire", value=0)

        rng = np.random.default_rng(seed)

        @acquire.putter  # type: ignore[no-redef]
        async def acquire(self, instance: Any, value: int) -> int:
            exposure = float(self.acquire_time.value)
            if not exposure > 0:
                raise ValueError(f"{self.acquire_time.pvname}: exposure must be > 0 s")
            laser, stage = self.parent.laser, self.parent.stage
            electrons = expected_photoelectrons(
                (height, width),
                wavelength_nm=float(laser.wavelength.value),
                position_mm=float(stage.position.value),
                power_at_sample_mw=float(laser.power.value)
                * float(laser.shutter.value)
                * SimOptics.transmission,
                exposure_s=exposure,
                sample=SimSample(),
                optics=SimOptics(),
            )
            model = CameraModel(
                gain=float(self.gain.value),
                zero_level=float(self.zero_level.value),
                read_noise=float(self.read_noise.value),
                bit_depth=int(self.bit_depth.value),
                dark_current=float(self.dark_current.value),
            )
            frame = model.expose(self.rng, electrons, exposure, pixel_type)
            await asyncio.sleep(exposure)
            await self.array_data.write(frame.ravel().astype(np.int32))
            return 0

    class LabIOC(PVGroup):
        """The whole setup under one prefix."""

        laser = SubGroup(LaserGroup, prefix="laser:")
        stage = SubGroup(StageGroup, prefix="stage:")
        cam = SubGroup(CameraGroup, prefix="cam:")
        pm = SubGroup(PowerMeterGroup, prefix="pm:")

    ioc = LabIOC(prefix=prefix, **kwargs)
    ioc.laser.tuning_rate._data["value"] = float(tuning_rate)
    ioc.stage.velocity._data["value"] = float(velocity)
    ioc.stage.acceleration._data["value"] = float(acceleration)
    return ioc


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m bluesky_zarr.devices.iocs.lab --prefix BZSIM:``."""
    parser, split_args = template_arg_parser(
        default_prefix="BZSIM:",
        desc="Simulated tunable laser, linear stage, camera and power meter (bluesky-zarr).",
        supported_async_libs=("asyncio",),
    )
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--dtype", default="uint16", choices=["uint8", "uint16", "uint32"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tuning-rate", type=float, default=500.0, help="nm/s")
    parser.add_argument("--velocity", type=float, default=10.0, help="mm/s")
    parser.add_argument("--acceleration", type=float, default=100.0, help="mm/s^2")
    parser.add_argument("--exposure-time", type=float, default=0.01, help="s")
    args = parser.parse_args(argv)
    ioc_options, run_options = split_args(args)
    ioc = make_lab_ioc(
        shape=(args.height, args.width),
        dtype=args.dtype,
        seed=args.seed,
        tuning_rate=args.tuning_rate,
        velocity=args.velocity,
        acceleration=args.acceleration,
        exposure_time=args.exposure_time,
        **ioc_options,
    )
    run(ioc.pvdb, **run_options)


if __name__ == "__main__":
    main()

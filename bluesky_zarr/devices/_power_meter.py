"""The power meter at the sample: power (mW) following the laser's wavelength and shutter."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Kind, Signal
from ophyd.status import DeviceStatus

from ._laser import TunableLaser
from ._signals import DescribedSignal, non_negative
from ._sim_physics import SimOptics

__all__ = ["PowerMeter", "SimPowerMeter"]


class PowerMeter(Device):
    """A power meter: ``trigger()`` measures over ``averaging_time``, then ``power`` holds the result.

    Components (the same in :class:`SimPowerMeter` and :class:`~bluesky_zarr.devices.EpicsPowerMeter`):

    ``power`` (hinted, mW)
        Power at the sample; data key ``<name>_power``.
    ``wavelength`` (nm)
        Wavelength the sensor's calibration is corrected for (follows the laser).
    ``averaging_time`` (s)
        Configuration.
    """

    def baseline_signals(self) -> list[Signal]:
        """The signals a scan records in its ``baseline`` stream."""
        return [self.averaging_time]


class SimPowerMeter(PowerMeter):
    """A simulated power meter behind the same optics as :class:`SimCamera`.

    Parameters
    ----------
    name
        Device name; data keys are ``<name>_power``, ``<name>_wavelength``.
    laser
        The laser it follows (wavelength, output power, shutter).
    transmission
        Fraction of the laser's output that reaches the sample (as in :class:`SimOptics`).
    relative_noise, offset_noise_mw
        Gaussian noise: a fraction of the reading plus a constant floor (mW RMS).
    averaging_time
        Time one reading takes, s.
    seed
        Seed of the noise generator.
    """

    power = Cpt(DescribedSignal, value=0.0, units="mW", dtype_numpy="<f8", kind=Kind.hinted)
    wavelength = Cpt(DescribedSignal, value=800.0, units="nm", dtype_numpy="<f8", kind=Kind.normal)
    averaging_time = Cpt(
        DescribedSignal, value=0.0, units="s", dtype_numpy="<f8", validator=non_negative, kind=Kind.config
    )

    def __init__(
        self,
        name: str = "power_meter",
        *,
        laser: TunableLaser,
        transmission: float = SimOptics.transmission,
        relative_noise: float = 0.005,
        offset_noise_mw: float = 1e-4,
        averaging_time: float = 0.0,
        seed: int | None = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.laser = laser
        self.transmission = transmission
        self.relative_noise = relative_noise
        self.offset_noise_mw = offset_noise_mw
        self.averaging_time.put(averaging_time)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def trigger(self) -> DeviceStatus:
        """Measure once; the status completes after ``averaging_time``."""
        status = DeviceStatus(self)
        wavelength = float(self.laser.wavelength.get())
        true_power = float(self.laser.power.get()) * float(self.laser.shutter.get()) * self.transmission
        with self._lock:
            noise = self._rng.normal(0.0, 1.0, 2)
        reading = true_power * (1.0 + self.relative_noise * noise[0]) + self.offset_noise_mw * noise[1]

        def finish() -> None:
            self.wavelength.put(wavelength)
            self.power.put(float(reading))
            status.set_finished()

        timer = threading.Timer(float(self.averaging_time.get()), finish)
        timer.daemon = True
        timer.start()
        return status

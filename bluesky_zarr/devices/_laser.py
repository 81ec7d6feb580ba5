"""The tunable laser (a Ti:sapphire such as a Mai Tai): wavelength, shutter and output power."""

from __future__ import annotations

from typing import Any

from ophyd import Component as Cpt
from ophyd import Kind, Signal
from ophyd.status import DeviceStatus

from ._motion import LimitedMover, SimMotion
from ._signals import DescribedSignal, non_negative, positive
from ._sim_physics import TI_SAPPHIRE_RANGE_NM, laser_output_power, linear_move_duration

__all__ = ["SimTunableLaser", "TunableLaser"]


def _shutter_value(value: Any) -> str | None:
    if value in (0, 1) and not isinstance(value, float):
        return None
    return "must be 1 (open) or 0 (closed)"


class TunableLaser(LimitedMover):
    """A tunable laser: ``set(wavelength_nm)`` tunes it and completes once the wavelength settled.

    Components (the same in :class:`SimTunableLaser` and
    :class:`~bluesky_zarr.devices.EpicsTunableLaser`):

    ``wavelength`` (hinted, nm)
        The measured wavelength; data key ``<name>_wavelength``.
    ``setpoint`` (nm)
        The requested wavelength.
    ``low_limit``, ``high_limit``, ``tuning_rate`` (nm/s), ``settle_time`` (s), ``shutter`` (1 open)
        Configuration.
    ``power`` (mW)
        Output power at the current wavelength (read in the baseline, not at every point).
    """

    _readback_attr = "wavelength"
    _axis_units = "nm"

    def baseline_signals(self) -> list[Signal]:
        """The signals a scan records in its ``baseline`` stream."""
        return [self.power, self.shutter, self.low_limit, self.high_limit, self.tuning_rate, self.settle_time]


class SimTunableLaser(TunableLaser):
    """A simulated Ti:sapphire laser, tunable over ``limits`` at ``tuning_rate`` nm/s.

    Parameters
    ----------
    name
        Device name; data keys are ``<name>_wavelength`` etc.
    wavelength
        Starting wavelength, nm.
    limits
        Tuning range, nm (default 690-1040).
    tuning_rate
        Tuning speed, nm/s; a move of 100 nm at the default 500 nm/s takes 0.2 s.
    settle_time
        Time to wait after arriving, s.
    peak_power_mw
        Output power at the 800 nm gain peak.
    """

    wavelength = Cpt(
        DescribedSignal,
        value=800.0,
        units="nm",
        dtype_numpy="<f8",
        limit_attrs=("low_limit", "high_limit"),
        kind=Kind.hinted,
    )
    setpoint = Cpt(
        DescribedSignal,
        value=800.0,
        units="nm",
        dtype_numpy="<f8",
        limit_attrs=("low_limit", "high_limit"),
        kind=Kind.normal,
    )
    low_limit = Cpt(
        DescribedSignal, value=TI_SAPPHIRE_RANGE_NM[0], units="nm", dtype_numpy="<f8", kind=Kind.config
    )
    high_limit = Cpt(
        DescribedSignal, value=TI_SAPPHIRE_RANGE_NM[1], units="nm", dtype_numpy="<f8", kind=Kind.config
    )
    tuning_rate = Cpt(
        DescribedSignal, value=500.0, units="nm/s", dtype_numpy="<f8", validator=positive, kind=Kind.config
    )
    settle_time = Cpt(
        DescribedSignal, value=0.0, units="s", dtype_numpy="<f8", validator=non_negative, kind=Kind.config
    )
    shutter = Cpt(DescribedSignal, value=1, dtype_numpy="<i8", validator=_shutter_value, kind=Kind.config)
    power = Cpt(DescribedSignal, value=0.0, units="mW", dtype_numpy="<f8", kind=Kind.omitted)

    def __init__(
        self,
        name: str = "laser",
        *,
        wavelength: float = 800.0,
        limits: tuple[float, float] = TI_SAPPHIRE_RANGE_NM,
        tuning_rate: float = 500.0,
        settle_time: float = 0.0,
        peak_power_mw: float = 2500.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.peak_power_mw = peak_power_mw
        self.tuning_rate.put(tuning_rate)
        self.settle_time.put(settle_time)
        self.low_limit.put(float(limits[0]))
        self.high_limit.put(float(limits[1]))
        self.check_value(wavelength)
        self._write_wavelength(float(wavelength))
        self.setpoint.put(float(wavelength))
        self._motion = SimMotion(self)

    def _write_wavelength(self, value: float) -> None:
        self.wavelength.put(value)
        self.power.put(laser_output_power(value, peak_power_mw=self.peak_power_mw))

    def _start_move(self, target: float) -> DeviceStatus:
        start = float(self.wavelength.get())
        rate = float(self.tuning_rate.get())
        self.setpoint.put(target)
        duration = linear_move_duration(target - start, rate)

        def profile(t: float) -> float:
            return start + (target - start) * min(t / duration, 1.0) if duration else target

        return self._motion.start(
            target, duration, profile, self._write_wavelength, float(self.settle_time.get())
        )

    def stop(self, *, success: bool = False) -> None:
        """Stop tuning where the laser is now."""
        self._motion.stop()

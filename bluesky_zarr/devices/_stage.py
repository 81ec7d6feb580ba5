"""The motorised linear stage: position (mm), limits, velocity, acceleration, settle time."""

from __future__ import annotations

from typing import Any

from ophyd import Component as Cpt
from ophyd import Kind, Signal
from ophyd.status import DeviceStatus

from ._motion import LimitedMover, SimMotion
from ._signals import DescribedSignal, non_negative, positive
from ._sim_physics import trapezoid_move_duration, trapezoid_position

__all__ = ["LinearStage", "SimLinearStage"]


class LinearStage(LimitedMover):
    """A linear stage: ``set(position_mm)`` moves it and completes once it settled.

    Components (the same in :class:`SimLinearStage` and
    :class:`~bluesky_zarr.devices.EpicsLinearStage`):

    ``readback`` (hinted, mm)
        The measured position; its data key is ``<name>_position`` (``position`` itself is a
        name ophyd reserves: :attr:`position` gives the value, as on any ophyd positioner).
    ``setpoint`` (mm)
        The requested position.
    ``low_limit``, ``high_limit`` (mm), ``velocity`` (mm/s), ``acceleration`` (mm/s²), ``settle_time`` (s)
        Configuration.
    """

    _readback_attr = "readback"
    _axis_units = "mm"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.readback.name = f"{self.name}_position"

    def baseline_signals(self) -> list[Signal]:
        """The signals a scan records in its ``baseline`` stream."""
        return [self.low_limit, self.high_limit, self.velocity, self.acceleration, self.settle_time]


class SimLinearStage(LinearStage):
    """A simulated stage moving with a trapezoidal velocity profile.

    Parameters
    ----------
    name
        Device name; data keys are ``<name>_position`` etc.
    position
        Starting position, mm.
    limits
        Travel range, mm.
    velocity, acceleration
        Motion profile, mm/s and mm/s².
    settle_time
        Time to wait after arriving, s.
    """

    readback = Cpt(
        DescribedSignal,
        value=0.0,
        units="mm",
        dtype_numpy="<f8",
        limit_attrs=("low_limit", "high_limit"),
        kind=Kind.hinted,
    )
    setpoint = Cpt(
        DescribedSignal,
        value=0.0,
        units="mm",
        dtype_numpy="<f8",
        limit_attrs=("low_limit", "high_limit"),
        kind=Kind.normal,
    )
    low_limit = Cpt(DescribedSignal, value=-25.0, units="mm", dtype_numpy="<f8", kind=Kind.config)
    high_limit = Cpt(DescribedSignal, value=25.0, units="mm", dtype_numpy="<f8", kind=Kind.config)
    velocity = Cpt(
        DescribedSignal, value=10.0, units="mm/s", dtype_numpy="<f8", validator=positive, kind=Kind.config
    )
    acceleration = Cpt(
        DescribedSignal, value=100.0, units="mm/s^2", dtype_numpy="<f8", validator=positive, kind=Kind.config
    )
    settle_time = Cpt(
        DescribedSignal, value=0.0, units="s", dtype_numpy="<f8", validator=non_negative, kind=Kind.config
    )

    def __init__(
        self,
        name: str = "stage",
        *,
        position: float = 0.0,
        limits: tuple[float, float] = (-25.0, 25.0),
        velocity: float = 10.0,
        acceleration: float = 100.0,
        settle_time: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.velocity.put(velocity)
        self.acceleration.put(acceleration)
        self.settle_time.put(settle_time)
        self.low_limit.put(float(limits[0]))
        self.high_limit.put(float(limits[1]))
        self.check_value(position)
        self.readback.put(float(position))
        self.setpoint.put(float(position))
        self._motion = SimMotion(self)

    def _start_move(self, target: float) -> DeviceStatus:
        start = self.position
        v, a = float(self.velocity.get()), float(self.acceleration.get())
        self.setpoint.put(target)
        duration = trapezoid_move_duration(target - start, v, a)
        return self._motion.start(
            target,
            duration,
            lambda t: trapezoid_position(t, start, target, v, a),
            self.readback.put,
            float(self.settle_time.get()),
        )

    def stop(self, *, success: bool = False) -> None:
        """Stop the stage where it is now."""
        self._motion.stop()

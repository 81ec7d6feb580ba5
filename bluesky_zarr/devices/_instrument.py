"""The four devices of the setup, made together and wired to each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._camera import Camera, SimCamera
from ._laser import SimTunableLaser, TunableLaser
from ._power_meter import PowerMeter, SimPowerMeter
from ._sim_physics import SimOptics, SimSample
from ._stage import LinearStage, SimLinearStage

__all__ = ["Instrument", "make_sim_instrument"]


@dataclass
class Instrument:
    """A laser, a stage, a camera and a power meter that belong together."""

    laser: TunableLaser
    stage: LinearStage
    camera: Camera
    power_meter: PowerMeter

    @property
    def detectors(self) -> list[Any]:
        """The camera and the power meter, in the order scans read them."""
        return [self.camera, self.power_meter]


def make_sim_instrument(
    *,
    shape: tuple[int, int] = (256, 256),
    dtype: str = "uint16",
    exposure_time: float = 0.01,
    fast: bool = False,
    seed: int = 0,
    sample: SimSample | None = None,
    optics: SimOptics | None = None,
) -> Instrument:
    """Simulated laser, stage, camera and power meter named ``laser``, ``stage``, ``camera``, ``power_meter``.

    Parameters
    ----------
    shape, dtype, exposure_time
        Camera frames.
    fast
        Near-instant moves (tuning at 1e6 nm/s, stage at 1e4 mm/s), for tests and docs.
    seed
        Seeds the camera's and the power meter's noise.
    sample, optics
        The simulated sample and light path (defaults: :class:`SimSample`, :class:`SimOptics`).
    """
    optics = SimOptics() if optics is None else optics
    laser = SimTunableLaser("laser", tuning_rate=1e6 if fast else 500.0)
    stage = SimLinearStage("stage", velocity=1e4 if fast else 10.0, acceleration=1e7 if fast else 100.0)
    camera = SimCamera(
        "camera",
        laser=laser,
        stage=stage,
        sample=sample,
        optics=optics,
        shape=shape,
        dtype=dtype,
        exposure_time=exposure_time,
        seed=seed,
    )
    power_meter = SimPowerMeter("power_meter", laser=laser, transmission=optics.transmission, seed=seed + 1)
    return Instrument(laser=laser, stage=stage, camera=camera, power_meter=power_meter)

"""Devices of a tunable-laser imaging setup: laser, stage, camera and power meter.

Each comes as a base class (the shared behaviour and component names), a simulated
implementation that needs no hardware (``Sim*``) and a Channel Access implementation (``Epics*``)
served in tests and demos by the caproto IOC in :mod:`bluesky_zarr.devices.iocs`.
"""

from ._camera import ALLOWED_DTYPES, Camera, SimCamera
from ._epics import EpicsCamera, EpicsLinearStage, EpicsPowerMeter, EpicsTunableLaser, make_epics_instrument
from ._errors import (
    DeviceFaultError,
    DeviceLimitError,
    DeviceStoppedError,
    DeviceTimeoutError,
    InvalidSettingError,
)
from ._instrument import Instrument, make_sim_instrument
from ._laser import SimTunableLaser, TunableLaser
from ._power_meter import PowerMeter, SimPowerMeter
from ._sim_physics import CameraModel, SimOptics, SimSample
from ._stage import LinearStage, SimLinearStage

__all__ = [
    "ALLOWED_DTYPES",
    "Camera",
    "CameraModel",
    "DeviceFaultError",
    "DeviceLimitError",
    "DeviceStoppedError",
    "DeviceTimeoutError",
    "EpicsCamera",
    "EpicsLinearStage",
    "EpicsPowerMeter",
    "EpicsTunableLaser",
    "Instrument",
    "InvalidSettingError",
    "LinearStage",
    "PowerMeter",
    "SimCamera",
    "SimLinearStage",
    "SimOptics",
    "SimPowerMeter",
    "SimSample",
    "SimTunableLaser",
    "TunableLaser",
    "make_epics_instrument",
    "make_sim_instrument",
]

"""Channel Access implementations of the four devices, with the same component names as the simulated ones.

They talk to the PVs that :mod:`bluesky_zarr.devices.iocs.lab` serves (or to real IOCs with the
same PV names). Use ophyd's caproto control layer (``ophyd.set_cl("caproto")``) when there is no
libca; :func:`bluesky_zarr.devices.iocs.use_loopback` does that and keeps the traffic on 127.0.0.1.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, EpicsSignalRO, Kind
from ophyd.status import DeviceStatus, Status

from ._camera import Camera, _bit_depth, _exposure, check_dtype
from ._errors import DeviceTimeoutError
from ._instrument import Instrument
from ._laser import TunableLaser, _shutter_value
from ._power_meter import PowerMeter
from ._signals import DescribedEpicsSignal, DescribedEpicsSignalRO, non_negative, positive
from ._stage import LinearStage

__all__ = ["EpicsCamera", "EpicsLinearStage", "EpicsPowerMeter", "EpicsTunableLaser", "make_epics_instrument"]

_F8 = {"dtype_numpy": "<f8"}


class _EpicsConnect(Device):
    """``connect(timeout)``: wait for every PV, or raise a timeout that names the missing ones."""

    def connect(self, timeout: float = 5.0) -> None:
        """Wait until every PV of the device is connected.

        Raises
        ------
        DeviceTimeoutError
            Some PVs did not connect within ``timeout``; the message names them.
        """
        try:
            self.wait_for_connection(timeout=timeout)
        except TimeoutError as exc:
            signals = [walked.item for walked in self.walk_signals()]
            missing = [sig.pvname for sig in signals if hasattr(sig, "pvname") and not sig.connected]
            raise DeviceTimeoutError(
                f"{self.name}: no answer within {timeout} s from PV(s) {', '.join(missing) or '?'}; "
                "check that the IOC runs and that EPICS_CA_ADDR_LIST / EPICS_CA_SERVER_PORT point at it."
            ) from exc


def _in_thread(device: Device, work: Any) -> DeviceStatus:
    """Run ``work()`` in a thread; the returned status finishes when it returns (or fails with its error)."""
    status = DeviceStatus(device)

    def run() -> None:
        try:
            work()
        except Exception as exc:
            status.set_exception(exc)
        else:
            status.set_finished()

    threading.Thread(target=run, name=f"{device.name}-trigger", daemon=True).start()
    return status


class EpicsTunableLaser(_EpicsConnect, TunableLaser):
    """A tunable laser over Channel Access (PVs ``<prefix>Wavelength``, ``Wavelength_RBV``, ...).

    The setpoint is written with put-completion: the IOC answers once the laser is tuned and settled.
    """

    wavelength = Cpt(
        DescribedEpicsSignalRO,
        "Wavelength_RBV",
        units="nm",
        limit_attrs=("low_limit", "high_limit"),
        kind=Kind.hinted,
        **_F8,
    )
    setpoint = Cpt(
        DescribedEpicsSignal,
        "Wavelength",
        put_complete=True,
        units="nm",
        limit_attrs=("low_limit", "high_limit"),
        kind=Kind.normal,
        **_F8,
    )
    low_limit = Cpt(DescribedEpicsSignalRO, "LowLimit_RBV", units="nm", kind=Kind.config, **_F8)
    high_limit = Cpt(DescribedEpicsSignalRO, "HighLimit_RBV", units="nm", kind=Kind.config, **_F8)
    tuning_rate = Cpt(
        DescribedEpicsSignal, "TuningRate", units="nm/s", validator=positive, kind=Kind.config, **_F8
    )
    settle_time = Cpt(
        DescribedEpicsSignal, "SettleTime", units="s", validator=non_negative, kind=Kind.config, **_F8
    )
    shutter = Cpt(
        DescribedEpicsSignal, "Shutter", dtype_numpy="<i8", validator=_shutter_value, kind=Kind.config
    )
    power = Cpt(DescribedEpicsSignalRO, "Power_RBV", units="mW", kind=Kind.omitted, **_F8)
    stop_request = Cpt(EpicsSignal, "Stop", kind=Kind.omitted)

    def _start_move(self, target: float) -> Status:
        return self.setpoint.set(target, timeout=None)

    def stop(self, *, success: bool = False) -> None:
        """Ask the IOC to stop tuning."""
        self.stop_request.put(1)


class EpicsLinearStage(_EpicsConnect, LinearStage):
    """A linear stage over Channel Access (PVs ``<prefix>Position``, ``Position_RBV``, ...)."""

    readback = Cpt(
        DescribedEpicsSignalRO,
        "Position_RBV",
        units="mm",
        limit_attrs=("low_limit", "high_limit"),
        kind=Kind.hinted,
        **_F8,
    )
    setpoint = Cpt(
        DescribedEpicsSignal,
        "Position",
        put_complete=True,
        units="mm",
        limit_attrs=("low_limit", "high_limit"),
        kind=Kind.normal,
        **_F8,
    )
    low_limit = Cpt(DescribedEpicsSignalRO, "LowLimit_RBV", units="mm", kind=Kind.config, **_F8)
    high_limit = Cpt(DescribedEpicsSignalRO, "HighLimit_RBV", units="mm", kind=Kind.config, **_F8)
    velocity = Cpt(
        DescribedEpicsSignal, "Velocity", units="mm/s", validator=positive, kind=Kind.config, **_F8
    )
    acceleration = Cpt(
        DescribedEpicsSignal, "Acceleration", units="mm/s^2", validator=positive, kind=Kind.config, **_F8
    )
    settle_time = Cpt(
        DescribedEpicsSignal, "SettleTime", units="s", validator=non_negative, kind=Kind.config, **_F8
    )
    stop_request = Cpt(EpicsSignal, "Stop", kind=Kind.omitted)

    def _start_move(self, target: float) -> Status:
        return self.setpoint.set(target, timeout=None)

    def stop(self, *, success: bool = False) -> None:
        """Ask the IOC to stop the stage."""
        self.stop_request.put(1)


class EpicsCamera(_EpicsConnect, Camera):
    """A camera over Channel Access: ``trigger()`` puts 1 to ``<prefix>Acquire`` and fetches ``ArrayData``.

    The frame shape and pixel type come from ``SizeY_RBV``, ``SizeX_RBV`` and ``DataType_RBV``.
    """

    exposure_time = Cpt(
        DescribedEpicsSignal, "AcquireTime", units="s", validator=_exposure, kind=Kind.config, **_F8
    )
    gain = Cpt(DescribedEpicsSignal, "Gain", units="ADU/e-", validator=positive, kind=Kind.config, **_F8)
    zero_level = Cpt(
        DescribedEpicsSignal, "ZeroLevel", units="counts", validator=non_negative, kind=Kind.config, **_F8
    )
    read_noise = Cpt(
        DescribedEpicsSignal, "ReadNoise", units="counts", validator=non_negative, kind=Kind.config, **_F8
    )
    bit_depth = Cpt(
        DescribedEpicsSignal,
        "BitDepth",
        units="bit",
        dtype_numpy="<i8",
        validator=_bit_depth,
        kind=Kind.config,
    )
    dark_current = Cpt(
        DescribedEpicsSignal, "DarkCurrent", units="e-/s", validator=non_negative, kind=Kind.config, **_F8
    )
    acquire = Cpt(EpicsSignal, "Acquire", put_complete=True, kind=Kind.omitted)
    array_data = Cpt(EpicsSignalRO, "ArrayData", kind=Kind.omitted)
    size_x = Cpt(EpicsSignalRO, "SizeX_RBV", kind=Kind.omitted)
    size_y = Cpt(EpicsSignalRO, "SizeY_RBV", kind=Kind.omitted)
    data_type = Cpt(EpicsSignalRO, "DataType_RBV", string=True, kind=Kind.omitted)

    @property
    def frame_shape(self) -> tuple[int, int]:
        return int(self.size_y.get()), int(self.size_x.get())

    @property
    def dtype(self) -> np.dtype:
        return check_dtype(self.data_type.get(), self.name)

    def trigger(self) -> DeviceStatus:
        """Expose once; the status completes when the IOC has the frame and it is in ``image``."""
        shape, dtype = self.frame_shape, self.dtype
        timeout = float(self.exposure_time.get()) + 10.0

        def work() -> None:
            self.acquire.set(1, timeout=timeout).wait(timeout)
            data = np.asarray(self.array_data.get(), dtype=np.int64)
            self._publish(data[: shape[0] * shape[1]].reshape(shape).astype(dtype))

        return _in_thread(self, work)


class EpicsPowerMeter(_EpicsConnect, PowerMeter):
    """A power meter over Channel Access: ``trigger()`` puts 1 to ``<prefix>Acquire``."""

    power = Cpt(DescribedEpicsSignalRO, "Power_RBV", units="mW", kind=Kind.hinted, **_F8)
    wavelength = Cpt(DescribedEpicsSignalRO, "Wavelength_RBV", units="nm", kind=Kind.normal, **_F8)
    averaging_time = Cpt(
        DescribedEpicsSignal, "AveragingTime", units="s", validator=non_negative, kind=Kind.config, **_F8
    )
    acquire = Cpt(EpicsSignal, "Acquire", put_complete=True, kind=Kind.omitted)

    def trigger(self) -> DeviceStatus:
        """Measure once; the status completes when the IOC has the reading."""
        timeout = float(self.averaging_time.get()) + 10.0
        return _in_thread(self, lambda: self.acquire.set(1, timeout=timeout).wait(timeout))


def make_epics_instrument(prefix: str = "BZSIM:", *, connect_timeout: float | None = 5.0) -> Instrument:
    """The four EPICS devices of the lab IOC under ``prefix``.

    They are named ``laser``, ``stage``, ``camera`` and ``power_meter``.

    Parameters
    ----------
    prefix
        The IOC's PV prefix.
    connect_timeout
        Wait this long for every PV (``None``: do not wait).

    Raises
    ------
    DeviceTimeoutError
        A PV did not connect in time; the message names it.
    """
    inst = Instrument(
        laser=EpicsTunableLaser(f"{prefix}laser:", name="laser"),
        stage=EpicsLinearStage(f"{prefix}stage:", name="stage"),
        camera=EpicsCamera(f"{prefix}cam:", name="camera"),
        power_meter=EpicsPowerMeter(f"{prefix}pm:", name="power_meter"),
    )
    if connect_timeout is not None:
        for device in (inst.laser, inst.stage, inst.camera, inst.power_meter):
            device.connect(timeout=connect_timeout)
    return inst

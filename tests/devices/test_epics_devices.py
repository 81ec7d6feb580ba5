"""The EPICS devices against the caproto lab IOC, started as a subprocess on 127.0.0.1."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import RunEngine
from ophyd.utils import LimitError

from bluesky_zarr.devices import (
    DeviceTimeoutError,
    EpicsTunableLaser,
    Instrument,
    InvalidSettingError,
    make_epics_instrument,
    make_sim_instrument,
)
from bluesky_zarr.devices.iocs import LabIOCProcess
from bluesky_zarr.plans import wavelength_position_scan


@pytest.fixture
def epics(lab_ioc: LabIOCProcess) -> Instrument:
    inst = make_epics_instrument(lab_ioc.prefix, connect_timeout=10.0)
    inst.laser.set(800.0).wait(5)
    inst.stage.set(0.0).wait(5)
    return inst


def test_same_components_and_description_as_simulated(epics: Instrument) -> None:
    sim = make_sim_instrument(shape=(8, 8), exposure_time=0.001, fast=True)
    for real, simulated in zip(
        (epics.laser, epics.stage, epics.camera, epics.power_meter),
        (sim.laser, sim.stage, sim.camera, sim.power_meter),
        strict=True,
    ):
        assert set(real.read_attrs) == set(simulated.read_attrs)
        assert set(real.configuration_attrs) == set(simulated.configuration_attrs)
        for key, desc in simulated.describe().items():
            got = real.describe()[key]
            for field in ("dtype", "dtype_numpy", "shape", "units", "dims", "limits"):
                assert got.get(field) == desc.get(field), (key, field)


def test_moves_and_limits(epics: Instrument) -> None:
    epics.laser.set(750.0).wait(5)
    assert epics.laser.read()["laser_wavelength"]["value"] == 750.0
    assert epics.laser.power.get() < 2500.0
    epics.stage.set(2.5).wait(5)
    assert epics.stage.position == 2.5
    with pytest.raises(LimitError, match="stage: target 30"):
        epics.stage.set(30.0)
    assert epics.stage.setpoint.get() == 2.5


def test_camera_frame_and_bad_settings(epics: Instrument) -> None:
    epics.camera.trigger().wait(5)
    frame = epics.camera.read()["camera_image"]["value"]
    assert frame.shape == (8, 8) and frame.dtype == np.uint16 and frame.mean() > 100
    with pytest.raises(InvalidSettingError, match="camera_exposure_time"):
        epics.camera.exposure_time.set(-1.0)
    with pytest.raises(ValueError, match="camera_gain"):
        epics.camera.gain.set(0.0)


def test_unanswered_pv_times_out_naming_it(lab_ioc: LabIOCProcess) -> None:
    laser = EpicsTunableLaser("NOBODY:laser:", name="ghost")
    with pytest.raises(DeviceTimeoutError, match="NOBODY:laser:Wavelength_RBV") as info:
        laser.connect(timeout=0.3)
    assert isinstance(info.value, TimeoutError)


def test_nested_scan_through_epics(epics: Instrument) -> None:
    RE = RunEngine({})
    docs: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE(wavelength_position_scan(epics.detectors, epics.laser, [700.0, 800.0], epics.stage, (-1.0, 1.0, 3)))
    events = [d for n, d in docs if n == "event" and "camera_image" in d["data"]]
    assert len(events) == 6
    assert [e["data"]["laser_wavelength"] for e in events] == [700.0] * 3 + [800.0] * 3
    assert [e["data"]["stage_position"] for e in events] == [-1.0, 0.0, 1.0] * 2
    assert docs[-1][1]["exit_status"] == "success"

"""The simulated devices: moves take time, limits hold, settings are checked, frames are physical."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from ophyd.utils import LimitError

from bluesky_zarr.devices import (
    DeviceLimitError,
    DeviceStoppedError,
    InvalidSettingError,
    SimCamera,
    SimLinearStage,
    SimOptics,
    SimSample,
    SimTunableLaser,
)
from bluesky_zarr.devices._sim_physics import laser_output_power, trapezoid_move_duration


def test_laser_tuning_takes_time_and_power_follows_wavelength() -> None:
    laser = SimTunableLaser(tuning_rate=2000.0)
    t0 = time.monotonic()
    laser.set(900.0).wait(5)
    assert time.monotonic() - t0 >= 0.04  # 100 nm at 2000 nm/s
    assert laser.position == 900.0
    assert laser.power.get() == pytest.approx(laser_output_power(900.0))
    assert laser.power.get() < laser_output_power(800.0)
    assert laser.locate() == {"setpoint": 900.0, "readback": 900.0}


def test_laser_limit_error_before_anything_moves() -> None:
    laser = SimTunableLaser()
    with pytest.raises(LimitError, match="laser: target 1100"):
        laser.set(1100.0)
    assert laser.setpoint.get() == 800.0 and laser.position == 800.0
    with pytest.raises(DeviceLimitError):
        laser.set(float("nan"))


def test_stage_trapezoid_move_settles_and_stops() -> None:
    stage = SimLinearStage(velocity=100.0, acceleration=1000.0, settle_time=0.01)
    expected = trapezoid_move_duration(10.0, 100.0, 1000.0) + 0.01
    t0 = time.monotonic()
    stage.set(10.0).wait(5)
    assert time.monotonic() - t0 >= expected * 0.9
    assert stage.position == 10.0
    stage.velocity.put(10.0)
    moving = threading.Event()
    stage.readback.subscribe(lambda value, **kw: moving.set() if value != 10.0 else None, run=False)
    status = stage.set(-20.0)
    assert moving.wait(2), "the stage never left 10 mm"
    stage.stop()
    with pytest.raises(DeviceStoppedError):
        status.wait(2)
    assert -20.0 < stage.position < 10.0
    with pytest.raises(LimitError):
        stage.set(30.0)


@pytest.mark.parametrize(
    ("signal", "value"),
    [
        ("exposure_time", 0),
        ("exposure_time", -1.0),
        ("exposure_time", float("nan")),
        ("gain", 0.0),
        ("gain", "x"),
    ],
)
def test_camera_rejects_invalid_settings(signal: str, value: object) -> None:
    camera = SimCamera(shape=(4, 4))
    with pytest.raises(ValueError, match=f"camera_{signal}"):
        getattr(camera, signal).set(value)
    with pytest.raises(InvalidSettingError):
        getattr(camera, signal).put(value)


def test_camera_rejects_bad_dtype_and_bit_depth() -> None:
    with pytest.raises(ValueError, match="float32"):
        SimCamera(dtype="float32")
    with pytest.raises(ValueError, match="bit_depth"):
        SimCamera(dtype="uint8", bit_depth=12)
    with pytest.raises(ValueError, match="shape"):
        SimCamera(shape=(0, 4))


@pytest.mark.parametrize(("dtype", "numpy"), [("uint8", "|u1"), ("uint16", "<u2"), ("uint32", "<u4")])
def test_camera_describe_and_trigger(dtype: str, numpy: str) -> None:
    laser = SimTunableLaser()
    camera = SimCamera(laser=laser, shape=(6, 10), dtype=dtype, exposure_time=0.02)
    key = camera.describe()["camera_image"]
    assert key["dtype_numpy"] == numpy and key["shape"] == [6, 10] and key["dims"] == ["y", "x"]
    assert key["units"] == "counts" and key["dtype"] == "array"
    t0 = time.monotonic()
    status = camera.trigger()
    assert not status.done
    status.wait(2)
    assert time.monotonic() - t0 >= 0.018
    frame = camera.read()["camera_image"]["value"]
    assert frame.dtype == np.dtype(dtype) and frame.shape == (6, 10)
    assert camera.describe_configuration()["camera_gain"]["units"] == "ADU/e-"


def test_frames_reproducible_from_seed_and_scale_with_power() -> None:
    def frames(seed: int, wavelength: float) -> np.ndarray:
        laser = SimTunableLaser(wavelength=wavelength)
        cam = SimCamera(laser=laser, shape=(16, 16), seed=seed, exposure_time=0.001)
        cam.trigger().wait(2)
        return cam.image.get()

    assert np.array_equal(frames(1, 800.0), frames(1, 800.0))
    assert not np.array_equal(frames(1, 800.0), frames(2, 800.0))
    assert frames(1, 800.0).mean() > frames(1, 1000.0).mean()  # less laser power at 1000 nm


def test_closed_shutter_gives_dark_frames_and_no_power(sim) -> None:  # type: ignore[no-untyped-def]
    sim.laser.shutter.set(0).wait(1)
    sim.camera.trigger().wait(2)
    sim.power_meter.trigger().wait(2)
    assert sim.camera.image.get().mean() == pytest.approx(100.0, abs=2.0)
    assert abs(sim.power_meter.power.get()) < 1e-3


def test_power_meter_follows_laser(sim) -> None:  # type: ignore[no-untyped-def]
    sim.laser.set(950.0).wait(2)
    sim.power_meter.trigger().wait(2)
    reading = sim.power_meter.read()
    assert reading["power_meter_wavelength"]["value"] == 950.0
    expected = laser_output_power(950.0) * SimOptics().transmission
    assert reading["power_meter_power"]["value"] == pytest.approx(expected, rel=0.03)
    assert sim.power_meter.describe()["power_meter_power"]["units"] == "mW"


def test_saturation_at_bit_depth() -> None:
    laser = SimTunableLaser()
    cam = SimCamera(laser=laser, shape=(8, 8), bit_depth=10, exposure_time=1.0, optics=SimOptics.flat())
    cam.exposure_time.put(0.5)
    cam.trigger().wait(2)
    assert cam.image.get().max() == 1023


def test_photon_transfer_recovers_gain_and_zero_level() -> None:
    """Dark frames give the zero level; flat fields at several exposures give gain = d(variance)/d(mean)."""
    gain, zero = 0.8, 150.0
    dark = SimCamera(
        shape=(64, 64), sample=SimSample.dark(), gain=gain, zero_level=zero, read_noise=2.0, seed=3
    )
    dark.trigger().wait(2)
    dark_frame = dark.image.get().astype(float)
    assert dark_frame.mean() == pytest.approx(zero, abs=0.5)
    assert dark_frame.std() == pytest.approx(2.0, rel=0.1)

    laser = SimTunableLaser()
    flat = SimCamera(
        laser=laser, shape=(64, 64), sample=SimSample.uniform(), optics=SimOptics.flat(1e-12),
        gain=gain, zero_level=zero, read_noise=2.0, seed=4, exposure_time=0.001,
    )  # fmt: skip
    means, variances = [], []
    for exposure in (0.001, 0.002, 0.004, 0.008):
        flat.exposure_time.put(exposure)
        pair = []
        for _ in range(2):
            flat.trigger().wait(2)
            pair.append(flat.image.get().astype(float))
        means.append((pair[0].mean() + pair[1].mean()) / 2 - zero)
        variances.append(np.var(pair[0] - pair[1]) / 2)  # the difference cancels fixed patterns
    slope, intercept = np.polyfit(means, variances, 1)
    assert slope == pytest.approx(gain, rel=0.05)
    assert intercept == pytest.approx(4.0 + 1 / 12, abs=3.0)


def test_fault_injection_fails_the_trigger() -> None:
    cam = SimCamera(shape=(4, 4), exposure_time=0.001, fail_after=1)
    cam.trigger().wait(2)
    with pytest.raises(OSError, match="simulated camera fault"):
        cam.trigger().wait(2)

"""Device-test fixtures: simulated devices with tiny times, one lab IOC on loopback per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bluesky_zarr.devices import Instrument, make_sim_instrument
from bluesky_zarr.devices.iocs import (
    LabIOCProcess,
    free_port,
    loopback_environment,
    start_lab_ioc,
    use_loopback,
)

IOC_ARGS = [
    "--height", "8", "--width", "8",
    "--tuning-rate", "1e6", "--velocity", "1e4", "--acceleration", "1e7", "--exposure-time", "0.001",
]  # fmt: skip


@pytest.fixture
def sim() -> Instrument:
    return make_sim_instrument(shape=(8, 8), exposure_time=0.001, fast=True)


@pytest.fixture(scope="session")
def lab_ioc() -> Iterator[LabIOCProcess]:
    """The lab IOC on 127.0.0.1 on ports free for this session; this process's CA stays on loopback."""
    env = loopback_environment(free_port(), free_port())
    use_loopback(env)
    ioc = start_lab_ioc("BZTEST:", env, args=IOC_ARGS)
    yield ioc
    ioc.stop()

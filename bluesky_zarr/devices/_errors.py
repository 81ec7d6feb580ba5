"""Errors raised by the devices.

Each derives from :class:`bluesky_zarr.BlueskyZarrError` and from the built-in (or ophyd) error
it resembles, so code that catches ``ValueError``, ``TimeoutError`` or ``ophyd.utils.LimitError``
keeps working.
"""

from __future__ import annotations

from ophyd.utils import LimitError

from .._errors import BlueskyZarrError

__all__ = [
    "DeviceFaultError",
    "DeviceLimitError",
    "DeviceStoppedError",
    "DeviceTimeoutError",
    "InvalidSettingError",
]


class DeviceLimitError(BlueskyZarrError, LimitError):
    """A move was asked for outside a device's limits; nothing moved."""


class InvalidSettingError(BlueskyZarrError, ValueError):
    """A device setting (exposure time, gain, velocity, ...) was given a value it cannot take."""


class DeviceTimeoutError(BlueskyZarrError, TimeoutError):
    """A device (an EPICS IOC) did not answer in time; the message names the PVs."""


class DeviceStoppedError(BlueskyZarrError, RuntimeError):
    """A move was stopped before it reached its target."""


class DeviceFaultError(BlueskyZarrError, OSError):
    """A device reported a hardware fault (a simulated one, in the simulated devices)."""

"""What the laser and the stage share: limit checks before a move, ``set``/``stop``/``locate``,
and the simulated motion that takes real time in a worker thread."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from ophyd import Device
from ophyd.status import DeviceStatus

from ._errors import DeviceLimitError, DeviceStoppedError

__all__ = ["LimitedMover", "SimMotion"]


class LimitedMover(Device):
    """A device that moves one axis within limits.

    Subclasses name the readback component in ``_readback_attr`` and have ``setpoint``,
    ``low_limit`` and ``high_limit`` components, and implement :meth:`_start_move`.
    """

    _readback_attr = ""
    _axis_units = ""

    @property
    def _readback_signal(self) -> Any:
        return getattr(self, self._readback_attr)

    @property
    def position(self) -> float:
        """The measured position of the axis now (as ophyd positioners have it)."""
        return float(self._readback_signal.get())

    @property
    def limits(self) -> tuple[float, float]:
        """``(low, high)`` limits of the axis, in its units."""
        return float(self.low_limit.get()), float(self.high_limit.get())

    def check_value(self, value: Any) -> None:
        """Raise :class:`~bluesky_zarr.devices.DeviceLimitError` unless ``value`` is inside the limits.

        Nothing moves when it raises.
        """
        low, high = self.limits
        try:
            target = float(value)
        except (TypeError, ValueError):
            raise DeviceLimitError(
                f"{self.name}: {value!r} is not a number; give a target in {self._axis_units}."
            ) from None
        if not math.isfinite(target) or not low <= target <= high:
            raise DeviceLimitError(
                f"{self.name}: target {value!r} {self._axis_units} is outside the limits "
                f"[{low}, {high}] {self._axis_units}; choose a target inside them."
            )

    def set(self, value: Any, **kwargs: Any) -> DeviceStatus:
        """Move to ``value`` (after checking the limits); the status completes once settled."""
        self.check_value(value)
        return self._start_move(float(value))

    def _start_move(self, target: float) -> Any:
        raise NotImplementedError

    def locate(self) -> dict[str, float]:
        """Setpoint and readback, as bluesky's ``Locatable`` protocol has them."""
        return {"setpoint": float(self.setpoint.get()), "readback": self.position}


class SimMotion:
    """Runs a simulated move in a thread, updating a readback until the target, then settling.

    ``profile(t)`` gives the position ``t`` seconds into the move; ``duration`` ends it.
    """

    def __init__(self, device: Device) -> None:
        self._device = device
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(
        self,
        target: float,
        duration: float,
        profile: Callable[[float], float],
        write: Callable[[float], None],
        settle_time: float,
    ) -> DeviceStatus:
        self.stop()
        self._stop = threading.Event()
        stop = self._stop
        status = DeviceStatus(self._device)

        def run() -> None:
            t0 = time.monotonic()
            step = min(0.02, max(duration / 20.0, 0.001))
            while (elapsed := time.monotonic() - t0) < duration:
                if stop.wait(step):
                    status.set_exception(
                        DeviceStoppedError(
                            f"{self._device.name}: move to {target} stopped before it arrived."
                        )
                    )
                    return
                write(profile(elapsed))
            write(target)
            if settle_time > 0 and stop.wait(settle_time):
                status.set_exception(
                    DeviceStoppedError(f"{self._device.name}: stopped while settling at {target}.")
                )
                return
            status.set_finished()

        self._thread = threading.Thread(target=run, name=f"{self._device.name}-move", daemon=True)
        self._thread.start()
        return status

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self._thread = None

"""Plans for the writer tests: grid and plain scans, and pauses that make bluesky take points again."""

from __future__ import annotations

from typing import Any

from bluesky import Msg
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import motor1, motor2, motor3

# plan, setpoints per axis (relative ones are offsets from where the motor starts)
GRID_PLANS = {
    "grid": (
        lambda dets: bp.grid_scan(dets, motor1, -1, 1, 3, motor2, 0, 2, 4),
        [[-1, 0, 1], [0, 2 / 3, 4 / 3, 2]],
    ),
    "grid-snake": (
        lambda dets: bp.grid_scan(dets, motor1, -1, 1, 3, motor2, 0, 2, 4, snake_axes=True),
        [[-1, 0, 1], [0, 2 / 3, 4 / 3, 2]],
    ),
    "rel-grid": (
        lambda dets: bp.rel_grid_scan(dets, motor1, -1, 1, 3, motor2, 0, 2, 2, snake_axes=True),
        [[-1, 0, 1], [0, 2]],
    ),
    "list-grid-snake": (
        lambda dets: bp.list_grid_scan(dets, motor1, [3, 1, 2], motor2, [5, 0], snake_axes=[motor2]),
        [[3, 1, 2], [5, 0]],
    ),
    "grid-3d-snake": (
        lambda dets: bp.grid_scan(dets, motor1, 0, 1, 2, motor2, 0, 2, 3, motor3, 0, 1, 2, snake_axes=True),
        [[0, 1], [0, 1, 2], [0, 1]],
    ),
}

# plans without a grid
PLAIN_PLANS = {
    "count": lambda dets: bp.count(dets, 7),
    "scan": lambda dets: bp.scan(dets, motor1, 0, 1, 6),
    "list_scan": lambda dets: bp.list_scan(dets, motor1, [3, 1, 2, 9]),
}


def pause_after_saves(plan: Any, saves: set[int]) -> Any:
    """Insert a pause right after the given 'save' messages (1-based): bluesky then rewinds."""
    count = 0

    def mutate(msg: Msg) -> tuple[Any, Any]:
        nonlocal count
        if msg.command == "save":
            count += 1
            if count in saves:

                def then_pause() -> Any:
                    yield Msg("pause", defer=False)

                return None, then_pause()
        return None, None

    return bpp.plan_mutator(plan, mutate)


def run_resuming(RE: Any, plan: Any) -> None:
    """Run ``plan``, resuming after every pause until it ends."""
    step = lambda: RE(plan)  # noqa: E731
    while True:
        try:
            step()
            return
        except RunEngineInterrupted:
            step = RE.resume

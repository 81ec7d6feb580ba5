"""The ``bluesky-zarr`` command line as a user runs it: a subprocess of this Python."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

CLI = [sys.executable, "-m", "bluesky_zarr.cli"]


def bluesky_zarr(*args: object, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=None if env is None else dict(env),
    )

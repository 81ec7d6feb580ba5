"""``python -m bluesky_zarr.devices.iocs``: the simulated lab IOC."""

from .lab import main

main()

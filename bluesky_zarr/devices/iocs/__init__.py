"""caproto IOCs that simulate the hardware, and helpers to run them on loopback only.

``python -m bluesky_zarr.devices.iocs`` (or ``python -m bluesky_zarr.devices.iocs.lab``) serves the
laser, the stage, the camera and the power meter under one prefix.
"""

from ._loopback import LabIOCProcess, free_port, loopback_environment, start_lab_ioc, use_loopback

__all__ = ["LabIOCProcess", "free_port", "loopback_environment", "start_lab_ioc", "use_loopback"]

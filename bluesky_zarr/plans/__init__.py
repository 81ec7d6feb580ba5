"""Scan plans that describe their grid in the start document, for the Zarr writer."""

from ._nested import PlanArgumentError, SetpointLimitError, nested_scan, wavelength_position_scan

__all__ = ["PlanArgumentError", "SetpointLimitError", "nested_scan", "wavelength_position_scan"]
